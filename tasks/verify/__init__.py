"""The verify stage: which numbers can be messaged. `contacts` asks the v1 API (with its 7-day
cache), `reachability` uses what earlier Cloud sends taught, `common` holds what both share,
`task` picks one by the sender's API for Prefect."""
