"""RequestFrame's interned string columns and their cached codes."""

from dataclasses import replace

import numpy as np
import pyarrow as pa

from promptcov.coverage.frame import RequestFrame, encode_strings
from promptcov.coverage.linking.cooccurrence import codes


def _frame():
    ips = ["10.0.0.2", None, "", "10.0.0.1", "10.0.0.2", "192.168.1.9", None, "10.0.0.1"]
    accounts = ["b", "a", "c", "a", "b", "c", "a", "b"]
    cols = {"account_id": [str(a) for a in accounts],  # distinct objects per row, as a database returns them
            "ts": np.arange(8.0)[::-1], "text_id": np.arange(8), "ip": [None if v is None else "".join(v)
                                                                    for v in ips]}
    return RequestFrame.from_columns(cols)


def test_equal_strings_share_one_object_and_codes_match_the_column():
    f = _frame()
    same = [i for i in range(len(f)) if f.ip[i] == "10.0.0.1"]
    assert len(same) == 2 and f.ip[same[0]] is f.ip[same[1]]  # interned: 8 bytes a row, not a str a row
    for name in ("ip", "account_id", "user_agent"):
        key, values = f.codes(name)
        ref_key, ref_values = codes(getattr(f, name))
        assert key.tolist() == ref_key.tolist() and values.tolist() == ref_values.tolist()
    key, values = f.codes("ip", drop_empty=False)
    assert values.tolist() == ["", "10.0.0.1", "10.0.0.2", "192.168.1.9"] and (key == -1).sum() == 2


def test_sort_by_account_then_time_as_with_string_keys():
    f = _frame()
    assert f.account_id.tolist() == ["a", "a", "a", "b", "b", "b", "c", "c"]
    assert all(np.diff(f.ts[f.account_id == a]).min() > 0 for a in ("a", "b", "c"))


def test_codes_after_take_drop_unheld_values_and_follow_a_replaced_column():
    f = _frame()
    sub = f.subset(f.account_id != "c")
    key, values = sub.codes("ip")
    ref_key, ref_values = codes(sub.ip)
    assert values.tolist() == ref_values.tolist() == ["10.0.0.1", "10.0.0.2"] and key.tolist() == ref_key.tolist()
    r = replace(f, ip=np.array(["x"] * len(f), dtype=object))
    assert r.codes("ip")[1].tolist() == ["x"] and f.codes("ip")[1].tolist()[0] == "10.0.0.1"


def test_encode_strings_takes_arrow_arrays_and_refuses_other_values():
    arr, (code, values) = encode_strings(pa.chunked_array([["z", None], ["a", "z"]]))
    assert arr.tolist() == ["z", None, "a", "z"] and code.tolist() == [1, -1, 0, 1] and values.tolist() == ["a", "z"]
    assert encode_strings(np.array([1, 2], dtype=object)) is None
    f = RequestFrame.from_columns({"account_id": ["a", "a"], "ts": [0.0, 1.0], "text_id": [0, 1],
                                   "org_id": np.array([7, None], dtype=object)})
    assert f.codes("org_id")[1].tolist() == ["7"]  # other values: coded through their str, as codes() does


def test_dictionary_arrays_are_taken_as_codes_and_unused_values_dropped():
    d = pa.DictionaryArray.from_arrays(pa.array([2, 0, None, 2], type=pa.int32()), pa.array(["z", "unused", "a"]))
    arr, (code, values) = encode_strings(d)
    assert arr.tolist() == ["a", "z", None, "a"] and values.tolist() == ["a", "z"] and code.tolist() == [0, 1, -1, 0]
    dup = pa.DictionaryArray.from_arrays(pa.array([0, 1], type=pa.int32()), pa.array(["x", "x"]))
    arr, (code, values) = encode_strings(dup)
    assert values.tolist() == ["x"] and code.tolist() == [0, 0]
