"""The send stage: `messages` turns a verified chunk into the messages it owes and writes the
outcomes back, `loop` sends them exactly once through the ledger at the sender's pace, `task`
runs every chunk through one sender for Prefect."""
