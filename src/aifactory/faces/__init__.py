"""What both faces of the facility (`api`, the JSON API, and `web`, the portal) share.

`state`: the app state either face reads (`AppState`) and the request dependencies over it (the
state, read and write sessions); `inputs`: the input types both check alike (names, titles,
ids, a job's submission); `wording`: the one wording of an input refused. It imports
`services`, `domain`, `errors`, FastAPI and pydantic, and never `api` or `web`: they import it.
"""
