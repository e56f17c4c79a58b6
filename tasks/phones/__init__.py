"""The phones stage: numbers to E.164 (`normalise`) and one customer per number (`dedupe`).

`clean` tidies raw text with pandas string operations, `bulk` classifies distinct numbers against
phonenumbers' metadata in bulk, `fallback` parses with phonenumbers one by one what bulk cannot
decide (also in child processes), `verdict` is what both say, `task` wraps the stage for Prefect.
Nothing is imported here, so a fallback child starts without pandas or Prefect.
"""
