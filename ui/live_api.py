"""HTTP routes of the live feed, served by the app's own web server beside Streamlit's.

``app.py`` builds the server as ``st.App(app.py, routes=routes(current_manager))`` (Streamlit's
Starlette app, started by the usual ``streamlit run app.py``):

- ``GET  /api/runs/{run_id}/live?have=V&figures=1&large=0&wait=2`` → ``ui.live_feed.run_state``
- ``POST /api/runs/{run_id}/{pause|resume|stop}`` → ``ui.live_feed.send_command``

A POST must carry the header ``X-Playground-Command: 1``: a page of another origin cannot send a
custom header without a CORS preflight, which this server does not answer, so it cannot pause or
stop anyone's runs. Handlers are plain functions: Starlette runs them on its worker threads.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.runtime.runner import RunManager
from ui import live_feed

COMMAND_HEADER = "x-playground-command"
NO_CACHE = {"Cache-Control": "no-store"}


def _number(request: Request, name: str, default: float, low: float, high: float) -> float:
    """A query parameter as a number within [low, high] (the default when absent or not one)."""
    try:
        value = float(request.query_params.get(name, default))
    except ValueError:
        return default
    return min(high, max(low, value))


def routes(manager: Callable[[], RunManager]) -> list[Route]:
    """The feed's routes, each asking ``manager()`` for the process's run manager."""

    def live(request: Request) -> JSONResponse:
        state = live_feed.run_state(
            manager(),
            request.path_params["run_id"],
            have=request.query_params.get("have"),
            figures=request.query_params.get("figures") == "1",
            large=request.query_params.get("large") == "1",
            wait_s=_number(request, "wait", 0.0, 0.0, live_feed.MAX_WAIT_S),
            skip=frozenset(filter(None, request.query_params.get("skip", "").split(","))),
        )
        return JSONResponse(state, status_code=200 if state["found"] else 404, headers=NO_CACHE)

    def command(request: Request) -> JSONResponse:
        if request.headers.get(COMMAND_HEADER) != "1":
            message = f"Commands need the header {COMMAND_HEADER}: 1."
            return JSONResponse({"ok": False, "message": message}, status_code=403)
        answer = live_feed.send_command(
            manager(), request.path_params["run_id"], request.path_params["action"]
        )
        return JSONResponse(answer, status_code=200 if answer["ok"] else 409, headers=NO_CACHE)

    return [
        Route("/api/runs/{run_id}/live", live, methods=["GET"]),
        Route("/api/runs/{run_id}/{action}", command, methods=["POST"]),
    ]
