"""The four requests the search and service tests store: three fill one grading template, one is organic."""

RECORDS = [
    {"request_id": "s1", "account_id": "sweep-1", "timestamp": 1763284364,
     "prompt": "Grade this answer on a scale of 1 to 10 using the rubric: photosynthesis"},
    {"request_id": "s2", "account_id": "sweep-2", "timestamp": 1763284365,
     "prompt": "Grade this answer on a scale of 1 to 10 using the rubric: photosynthesis"},
    {"request_id": "s3", "account_id": "sweep-3", "timestamp": 1763284366,
     "prompt": "Grade this answer on a scale of 1 to 10 using the rubric: mitosis"},
    {"request_id": "o1", "account_id": "user-1", "timestamp": 1763284367, "prompt": "best pizza dough recipe"},
]
