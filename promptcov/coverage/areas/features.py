"""Request-shape features: what a request *is*, independent of what it is about.

An embedding of the first 128 tokens sees the topic of a request. A distillation sweep is told
apart by the shape it wraps around its tasks: tool or action schemas, a repository and a shell,
a run-the-tests loop, screen states and click actions, image parts, a score scale and a rubric, a
demand to write the reasoning out, a "make it acceptable" rewrite instruction. Each feature here
measures one such piece of structure from the full text (head and tail of very long texts), as a
count or fraction scaled to ``[0, 1]``, so the classifier in
:mod:`promptcov.coverage.areas.assigner` can weigh them beside the embedding.

The patterns look for structure (JSON keys, paths, diff hunks, coordinates, score ranges, table
rows) rather than for the wording of any one scaffold, so that scaffolds never seen in training
still light them up.

>>> X = shape_features(["You can run shell commands in /workspace."], ["Fix tests/test_io.py, then run pytest."])
>>> round(float(X[0, FEATURE_NAMES.index("repo_context")]), 2) > 0
True
>>> strongest_evidence(X[0]).split(":")[0]
'agentic_coding'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from promptcov.coverage.areas.markers import clip_text

__all__ = ["FEATURE_NAMES", "FEATURE_AREA", "shape_features", "request_features", "strongest_evidence"]

_F = re.IGNORECASE | re.MULTILINE


def _rx(p: str) -> re.Pattern:
    return re.compile(p, _F)


# --- agent scaffolds ------------------------------------------------------------------------
_SCHEMA_KEY = _rx(
    r"""["']?\b(parameters|input_schema|inputSchema|properties|required(_parameters)?|optional_parameters|"""
    r"""api_name|tool_name|function_name|arguments|args_schema|returns)\b["']?\s*[:=]"""
)
_SCHEMA_BLOCK = _rx(
    r"</?(tools?|functions?|tool_list|available_tools|function_definitions)>|"
    r"""["']type["']\s*:\s*["'](function|object)["']|\bdef\s+\w+\([^)]*\)\s*->|"""
    r"""^\s*[-*]?\s*`?\w+(\.\w+)?\(\s*\w+\s*:\s*(str|int|float|bool|string|number|list)"""
)
_JSON_ACTION = _rx(
    r"""["'](action|action_input|tool|tool_name|tool_call|function_call|command|cmd|name)["']\s*:\s*["'{\[]|"""
    r"^\s*(thought|action|action input|observation|final answer)\s*:|<(tool_call|function_call|invoke|"
    r"action|execute|bash|command)\b"
)
_PATH = _rx(
    r"(?<![\w/])(/(workspace|testbed|repo|app|home/\w+|tmp|mnt/\w+|usr/src|project|code|src)(/[\w.\-]+)*|"
    r"(src|lib|tests?|pkg|cmd|app|internal|scripts|docs)/[\w.\-/]+|[\w\-]+/[\w\-/]*\w\.(py|js|ts|tsx|go|rs|java|"
    r"c|cc|cpp|h|rb|php|cs|kt|swift|scala|toml|ya?ml|json|cfg|ini|md|sh|sql))\b"
)
_FILE_EXT = _rx(r"\b[\w\-]+\.(py|js|ts|tsx|jsx|go|rs|java|c|cpp|h|hpp|rb|php|cs|kt|swift|scala|sh|toml|ya?ml|lock)\b")
_DIFF = _rx(r"^(diff --git|@@ -\d+(,\d+)? \+\d+|--- a/|\+\+\+ b/|index [0-9a-f]{6,}\.\.)")
_TRACE = _rx(
    r"^Traceback \(most recent call last\)|^\s+File \"[^\"]+\", line \d+|^\s+at [\w.$]+\([\w.]+:\d+\)|"
    r"\b\w+(Error|Exception):\s|^(error|warning)(\[\w+\])?:\s|panicked at|segmentation fault"
)
_GIT = _rx(
    r"\bgit (clone|diff|commit|checkout|log|status|apply|stash|rebase|push)\b|\b(pull request|code ?base|"
    r"repository|repo|commit [0-9a-f]{7,}|branch|working (tree|directory)|checked[- ]out|patch|workspace|"
    r"monorepo|crates?|modules?|packages?|nightly build|(the )?build (fails|is failing|broke\w*)|ci( pipeline)?)\b"
)
_SHELL = _rx(
    r"^\s*(\$|#|>)\s+\S|```(bash|sh|shell|console|zsh)|\b(pytest|tox|npm (test|run|install)|yarn|pnpm|"
    r"cargo (test|build|run)|go (test|build)|make( test)?|mvn|gradle|pip install|python -m|bash|grep -r|"
    r"sed -i|ls -la|cat \S+|cd \S+|find \. |docker|kubectl)\b|\b(run|execute|shell|terminal|command[- ]line)"
    r"\b.{0,20}\bcommands?\b|"
    # file and shell tools offered to a model (by name, in any schema format)
    r"""["'(\s`](shell|bash|terminal|run_command|execute_command|run_shell|exec|read_file|write_file|edit_file|"""
    r"""create_file|str_replace\w*|apply_patch|open_file|search_code|find_file|list_dir)["')`(]"""
)
_LOOP = _rx(
    r"\b(run|re-?run|execute)\b.{0,30}\b(tests?|test suite|pytest|jest|unit tests|specs?|checks?|linter|build)\b|\buntil\b.{0,40}"
    r"\b(pass(es)?|green|succeeds?|works?|fixed|resolved|done)\b|\biterat\w*|\bverify\b.{0,30}\b(fix|change|"
    r"solution|patch)\b|\b(tests?|suite|build|ci)\b.{0,12}\b(green|passing)\b|\breproduc\w+\b.{0,30}\b(bug|issue|error|failure|problem)\b|\bsubmit\b.{0,30}\b(patch|"
    r"diff|fix|pr|changes)\b|\bfailing tests?\b|\bregression test\b"
)
_AGENT_ROLE = _rx(
    r"\b(you are|you're|act as|acting as|serve as|operate as)\s+(an?|the)\s+([\w\-]+\s+){0,3}(agent|assistant with (access|tools)|"
    r"engineer|developer|operator|autonomous \w+)\b|\byou (have|has|will have|are given|can use|may use|can call)\b"
    r".{0,30}\b(access to|tools?|functions?|apis?|actions?|the following)\b|\bavailable (tools|functions|actions|"
    r"commands|apis)\b|\b(tools?|functions?) (you|available|at your disposal)\b|"
    r"\b(ai|coding|software|autonomous|llm|web|gui|browser|computer|research|swe)[\s-]agents?\b"
)
_ISSUE = _rx(
    r"\b(expected (behaviou?r|result|output)|actual (behaviou?r|result|output)|steps to reproduce|"
    r"to reproduce|minimal (reproducible )?example|version(s)?:|regression|stack ?trace|bug report|"
    r"\bissue\b|feature request|raises?|throws?|crash(es)?)\b"
)
# --- computer control -----------------------------------------------------------------------
_UI_ACTION = _rx(
    r"\b(left_click|right_click|double_click|middle_click|mouse_move|left_click_drag|key_press|hotkey|"
    r"pyautogui|xdotool)\b|\b(click|tap|type|scroll|swipe|press|hover|drag|select|long_press)\s*\(|"
    r"^\s*(click|tap|type|scroll|press|hover|swipe|goto|go_back)\s+\[?\d+|\b(click|type|scroll|hover|press)"
    r"\s*\[\d+\]|\b(ctrl|cmd|alt|shift)\s*\+\s*\w|\b(click|tap|double-click|right-click)s?\s+(on\s+)?"
    r"(the\s+)?[\"'\w]+\s+(button|icon|link|tab|menu|field|checkbox)"
)
_COORD = _rx(
    r"\(\s*\d{1,4}\s*,\s*\d{1,4}\s*\)|\[\s*\d{1,4}\s*,\s*\d{1,4}\s*\]|\bx\s*[=:]\s*\d{1,4}\s*,\s*y\s*[=:]\s*\d|"
    r"\bcoordinates?\b|\b\d{3,4}\s*[x×]\s*\d{3,4}\b|\bbbox|bounding box"
)
_SCREEN = _rx(
    r"\b(screenshots?|screen ?(state|shot|content)|current (screen|page|window|url|tab)|viewport|"
    r"desktop|browser|web ?page|accessibility tree|a11y|dom tree|ui element|element[_ ]id|bid|"
    r"observation|app(lication)? window|status bar|url bar|address bar|home screen|android|ios app)\b|"
    r"^\s*\[\d+\]\s+(button|link|textbox|combobox|checkbox|img|heading|menuitem|tab|statictext|option)\b|"
    r"\brole\s*[:=]\s*[\"']?(button|link|textbox)|<(button|input|a)\s[^>]*\b(id|aria-label)="
)
# --- images ---------------------------------------------------------------------------------
_IMAGE_PART = _rx(
    r"\[image(\s*\d+)?\]|<image>|<img\b|data:image/\w+;base64|https?://\S+\.(png|jpe?g|gif|webp|bmp|tiff?)\b|"
    r"\b[\w\-]+\.(png|jpe?g|gif|webp|bmp|heic)\b|\"type\"\s*:\s*\"image(_url)?\""
)
_IMAGE_REF = _rx(
    r"\b(in|on|from|of|at)\s+(this|the|these|each|attached|given|provided|uploaded|following|above)\s+"
    r"(image|photo|picture|pic|screenshot|figure|diagram|chart|scan|frame|drawing|illustration)s?\b|"
    r"\b(attached|uploaded|provided|given)\s+(image|photo|picture|screenshot|figure|scan)s?\b|"
    r"\bwhat (do you see|is shown|is happening in)\b|\b(image|photo|picture)s?\s+(shows?|depicts?|above|below)\b"
)
# --- grading ---------------------------------------------------------------------------------
_SCALE = _rx(
    r"\b(score|rate|rating|grade|mark)\b.{0,40}\b(\d{1,2}|one)\s*(-|–|to|and|/|out of)\s*(\d{1,3}|five|ten)\b|"
    r"\[RESULT\]|\[\[\s*(rating|[0-9]+|A|B|C|tie)\s*\]\]|\bout of (5|10|100)\b|\b(score|rating|grade|verdict)"
    r"\s*:\s*\[?\d|\blikert\b|\b[1-5]\s*=\s*\w+"
)
_RUBRIC = _rx(
    r"\b(rubric|scoring criteria|evaluation criteria|score rubrics?|criteria|criterion|reference answer|"
    r"(helpfulness|harmlessness|relevance|accuracy|coherence|fluency|faithfulness|correctness|conciseness)"
    r"\s*[:(,]|impartial judge|judge|evaluat(e|or|ion)|assess|grader|reward model|feedback)\b|^\s*score\s*\d\s*:"
)
_RESPONSE = _rx(
    r"\b(the (start|end) of (the )?(assistant|response|answer)|assistant [ab]'s|response to (evaluate|grade|"
    r"be evaluated|assess|judge)|(model|candidate|student|assistant)('s)? (response|answer|output|essay|summary)|"
    r"output [ab]|response [ab12]|answer to (grade|evaluate)|###\s*response)\b"
)
# --- reasoning elicitation --------------------------------------------------------------------
_REASON = _rx(
    r"\b(think|thinking|reason|reasoning|solve|work|working|answer|go|let'?s)\b[^.?!\n]{0,30}\bstep[- ]by[- ]step\b|"
    r"\bstep[- ]by[- ]step\s+(reasoning|thinking|solution|derivation|analysis)\b|"
    r"\bexplain\b[^.?!\n]{0,15}\bstep[- ]by[- ]step\s*([.,;]|$|before|then)|\bchain[- ]of[- ]thoughts?\b|\b(show|write|lay out|explain|give|include|provide|"
    r"present|detail|walk (me )?through|spell out|output|document)\b.{0,12}\b(your|all( of)?( the| your)?|each|every|"
    r"the (full|complete|entire|detailed|intermediate|whole))\s+((full|complete|entire|detailed|intermediate|whole|"
    r"own)\s+)?(work(ing)?|reasoning|thinking|thoughts?|thought process|steps|derivation|rationale|logic|"
    r"justification|inferences?)\b|\bthink(ing)?\b.{0,20}\b(carefully|aloud|out loud|through|first|before)\b|"
    r"<(think|thinking|reasoning|scratchpad)>|\bscratch ?pad\b|\breason(ing)? (trace|chain)\b|"
    r"\blet'?s (think|reason|work)\b|\b(reason|think) (about it )?before (you )?(answer|respond)\w*|"
    r"\bbefore (giving|stating|writing) (the|your) (final )?answer\b|\brationale\b"
)
# --- censorship-safe rewriting ----------------------------------------------------------------
_SENSITIVE = _rx(
    r"\b(tiananmen|xinjiang|uyghurs?|uighurs?|tibet\w*|dalai lama|falun|taiwan\w*|hong kong|xi jinping|ccp|"
    r"communist party|june (4|fourth)|cultural revolution|great leap|liu xiaobo|kremlin|putin|navalny|"
    r"north korea\w*|politically|political|government|regime|protests?|dissidents?|activists?|censor\w*|"
    r"propaganda|state media|human rights|crackdown|detention|camps?|democracy|sovereignty|separatis\w+|"
    r"party line|authorities|officials?)\b"
)
_SAFE_REWRITE = _rx(
    r"\b(rewrite|re-?word|rephrase|paraphrase|reformulate|revise|edit|adapt|soften|sanitize|tone down|"
    r"recast|reframe)\w*\b.{0,120}\b(acceptable|safe|compliant|complian\w+|censor\w*|sensitive|approved|"
    r"harmonious|regulations?|authorities|official (line|position|narrative|view)|state media|positive energy|"
    r"pass (review|moderation|the filter)|not (be )?(blocked|deleted|taken down|flagged)|moderat\w+|"
    r"publishable|allowed|permissible)\b|\b(acceptable|safe|compliant|permissible)\b.{0,60}\b(rewrite|"
    r"version|wording|phrasing|reformulation)\b"
)
# --- tables, code, maths --------------------------------------------------------------------
_MD_ROW = _rx(r"^\s*\|.*\|.*\|\s*$")
_MD_SEP = _rx(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$")
_CSV_ROW = _rx(r"^[^,\n]{0,40}(,[^,\n]{0,40}){2,}$|^[^\t\n]+(\t[^\t\n]+){2,}$")
_ANALYSIS = _rx(
    r"\b(analy[sz]\w*|average|mean|median|sum|total|trend|correlat\w+|regression|pivot|group(ed)? by|"
    r"aggregate|distribution|outliers?|percent(age)?|growth|compare|which (row|column|month|region|product)|"
    r"columns?|rows?|dataset|spreadsheet|table|csv|chart|plot|visuali[sz]e|statistic\w*|forecast)\b"
)
_CODE_BLOCK = _rx(r"^```|^(    |\t)\S.*[;{}:)]\s*$")
_CODE_LINE = _rx(
    r"^\s*(def |class |function |import |from \S+ import|#include|public |private |return\b|const |let |var |"
    r"fn |func |package |SELECT |CREATE |for\s*\(|if\s*\(|while\s*\(|\}|console\.log|print\()"
)
_CODE_ASK = _rx(
    r"\b(python|javascript|typescript|java|c\+\+|c#|golang|rust|ruby|php|sql|bash|kotlin|swift|html|css|regex|"
    r"function|method|class|script|program|algorithm|api|compile\w*|debug\w*|refactor\w*|implement\w*|code)\b"
)
_MATH = _rx(
    r"\\(frac|sqrt|int|sum|cdot|times|le|ge|pi|theta)\b|\$[^$\n]{1,80}\$|\b\d+\s*[-+*/^×÷]\s*\d+|"
    r"\b(solve|equation|integral|derivative|probability|prime|divisible|remainder|how many|how much|percent|"
    r"ratio|area of|perimeter|sum of|product of|x\s*=|f\(x\)|theorem|prove)\b"
)
_FIRST_PERSON = _rx(r"\b(i|i'm|i've|my|me|we|our)\b")

#: Feature name -> the area it is evidence for (``None``: context, no area of its own).
FEATURE_AREA: dict[str, str | None] = {
    "tool_schema": "tool_use",
    "json_action": "tool_use",
    "agent_role": "agentic_coding",
    "repo_context": "agentic_coding",
    "diff_or_trace": "agentic_coding",
    "shell": "agentic_coding",
    "iterate_loop": "agentic_coding",
    "issue_report": "agentic_coding",
    "ui_action": "computer_use",
    "coordinates": "computer_use",
    "screen_state": "computer_use",
    "image_part": "computer_vision",
    "image_reference": "computer_vision",
    "score_scale": "rubric_grading",
    "rubric": "rubric_grading",
    "response_to_grade": "rubric_grading",
    "reasoning_demand": "cot_elicitation",
    "sensitive_topic": None,
    "safe_rewrite": "censorship_rewrite",
    "table": "data_analysis",
    "analysis_ask": None,
    "code_block": "coding",
    "code_ask": None,
    "math": "math_reasoning",
    "agent_shape": "agentic_coding",
    "grading_shape": "rubric_grading",
    "bare_reasoning": "cot_elicitation",
    "image_task": "computer_vision",
    "tool_task": "tool_use",
    "has_system": None,
    "length": None,
    "lines": None,
    "first_person": None,
    "question": None,
}
FEATURE_NAMES: list[str] = list(FEATURE_AREA)


def _n(rx: re.Pattern, text: str, cap: int = 50) -> int:
    k = 0
    for _ in rx.finditer(text):
        k += 1
        if k >= cap:
            break
    return k


def _sat(k: float, half: float) -> float:
    """Saturating scale of a count: 0 -> 0, ``half`` -> 0.5, many -> 1."""
    return float(k / (k + half)) if k > 0 else 0.0


def _table(text: str) -> float:
    md = _n(_MD_ROW, text, 200)
    sep = 1 if _MD_SEP.search(text) else 0
    csv = _n(_CSV_ROW, text, 200)
    rows = md + (2 if sep else 0) if md >= 2 else 0
    rows = max(rows, csv if csv >= 3 else 0)
    return _sat(rows, 4.0)


def request_features(system: str | None, prompt: str | None) -> np.ndarray:
    """The shape features of one request (columns follow :data:`FEATURE_NAMES`), in ``[0, 1]``."""
    s, p = clip_text(system), clip_text(prompt)
    t = f"{s}\n{p}" if s else p
    n_lines = t.count("\n") + 1
    schema = _n(_SCHEMA_KEY, t) + 2 * _n(_SCHEMA_BLOCK, t)
    sens = _n(_SENSITIVE, t)
    rewrite = 1.0 if _SAFE_REWRITE.search(t) else 0.0
    code_lines = _n(_CODE_LINE, t, 100) + _n(_CODE_BLOCK, t, 100)
    words = max(1, len(t.split()))
    vals = {
        "tool_schema": _sat(schema, 3.0),
        "json_action": _sat(_n(_JSON_ACTION, t), 2.0),
        "agent_role": _sat(_n(_AGENT_ROLE, t), 1.5),
        "repo_context": _sat(_n(_PATH, t) + _n(_FILE_EXT, t) + _n(_GIT, t), 3.0),
        "diff_or_trace": _sat(_n(_DIFF, t) + _n(_TRACE, t), 2.0),
        "shell": _sat(_n(_SHELL, t), 2.0),
        "iterate_loop": _sat(_n(_LOOP, t), 1.0),
        "issue_report": _sat(_n(_ISSUE, t), 2.0),
        "ui_action": _sat(_n(_UI_ACTION, t), 1.5),
        "coordinates": _sat(_n(_COORD, t), 1.5),
        "screen_state": _sat(_n(_SCREEN, t), 2.0),
        "image_part": _sat(_n(_IMAGE_PART, t), 0.5),
        "image_reference": _sat(_n(_IMAGE_REF, t), 0.7),
        "score_scale": _sat(_n(_SCALE, t), 1.0),
        "rubric": _sat(_n(_RUBRIC, t), 3.0),
        "response_to_grade": _sat(_n(_RESPONSE, t), 1.0),
        "reasoning_demand": _sat(_n(_REASON, t), 0.7),
        "sensitive_topic": _sat(sens, 1.5),
        "safe_rewrite": rewrite * (0.5 + 0.5 * min(1.0, sens / 2.0)),
        "table": _table(t),
        "analysis_ask": _sat(_n(_ANALYSIS, t), 3.0),
        "code_block": min(1.0, code_lines / max(4.0, 0.5 * n_lines)),
        "code_ask": _sat(_n(_CODE_ASK, t), 2.0),
        "math": _sat(_n(_MATH, t), 2.0),
        "has_system": 1.0 if s.strip() else 0.0,
        "length": min(1.0, np.log1p(len(t)) / np.log1p(20_000)),
        "lines": _sat(n_lines - 1, 15.0),
        "first_person": min(1.0, 8.0 * _n(_FIRST_PERSON, t, 200) / words),
        "question": 1.0 if "?" in p[-400:] else 0.0,
    }
    _combine(vals)
    return np.array([vals[k] for k in FEATURE_NAMES], dtype=np.float32)


def _pres(x: float) -> float:
    """Presence: one clear hit (a scaled count of 0.5) counts fully."""
    return min(1.0, 2.0 * x)


def _combine(v: dict[str, float]) -> None:
    """Interactions a linear model cannot form: a coding task *inside* an agent scaffold; a score scale
    *around* a response or rubric; an image without GUI control; tools without an agent or GUI loop; a reasoning demand on a *bare* question
    (no other task shape)."""
    scaffold = max(v["agent_role"], v["shell"], v["tool_schema"], v["json_action"])
    v["agent_shape"] = _pres(scaffold) * _pres(max(v["repo_context"], v["iterate_loop"], v["diff_or_trace"]))
    v["grading_shape"] = _pres(v["score_scale"]) * max(_pres(v["rubric"]), _pres(v["response_to_grade"]), 0.5)
    other = max(v["score_scale"], v["tool_schema"], v["json_action"], v["agent_shape"], v["iterate_loop"],
                v["ui_action"], v["screen_state"], v["image_part"], v["safe_rewrite"], v["table"])
    gui = _pres(max(v["ui_action"], v["screen_state"], v["coordinates"]))
    v["image_task"] = _pres(max(v["image_part"], v["image_reference"])) * (1.0 - gui)
    v["tool_task"] = _pres(max(v["tool_schema"], v["json_action"])) * (1.0 - v["agent_shape"]) * (1.0 - gui)
    v["bare_reasoning"] = _pres(v["reasoning_demand"]) * max(0.0, 1.0 - 2.0 * other)


def shape_features(systems: Sequence[str | None], prompts: Sequence[str | None]) -> np.ndarray:
    """``(n, len(FEATURE_NAMES))`` float32 matrix of shape features of aligned ``systems``/``prompts``."""
    if len(systems) != len(prompts):
        raise ValueError(f"systems has {len(systems)} entries but prompts has {len(prompts)}")
    if not len(prompts):
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    return np.stack([request_features(s, p) for s, p in zip(systems, prompts, strict=True)])


#: Below this a feature is not reported as a request's evidence.
_EVIDENCE_MIN = 0.3


def strongest_evidence(row: np.ndarray, area: str | None = None) -> str | None:
    """``"area:feature"`` of the strongest area-bearing feature of one row (of ``area`` only, when
    given), or ``None`` when none reaches 0.3."""
    best, name = _EVIDENCE_MIN, None
    for j, f in enumerate(FEATURE_NAMES):
        a = FEATURE_AREA[f]
        if a is None or (area is not None and a != area):
            continue
        if float(row[j]) >= best:
            best, name = float(row[j]), f"{a}:{f}"
    return name
