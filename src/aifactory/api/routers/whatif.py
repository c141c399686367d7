"""Scheduler what-if runs: replay a workload under two configurations and compare them
(admins and operators). A run is answered at once (202) and replayed in the background: poll
`GET /whatif/{id}` until its state is done (or failed, with a message)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from aifactory.api.deps import CurrentUser, Now, ReadSession
from aifactory.api.whatif_schemas import WhatIfIn, WhatIfOut
from aifactory.services import whatif

router = APIRouter(prefix="/whatif", tags=["what-if"])
RunId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("", status_code=202, response_model=WhatIfOut)
def start_run(body: WhatIfIn, session: ReadSession, user: CurrentUser, now: Now) -> WhatIfOut:
    """Queue a replay; the facility's history is read now, a trace on the worker."""
    return WhatIfOut.of(whatif.start(session, user, body.ask(), now=now))


@router.get("", response_model=list[WhatIfOut])
def list_runs(user: CurrentUser) -> list[WhatIfOut]:
    """Every run since the facility started, newest first (the last few are kept)."""
    return [WhatIfOut.of(run) for run in whatif.list_runs(user)]


@router.get("/{run_id}", response_model=WhatIfOut)
def get_run(run_id: RunId, user: CurrentUser) -> WhatIfOut:
    return WhatIfOut.of(whatif.get_run(user, run_id))
