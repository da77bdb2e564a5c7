"""The local review web app (Starlette; pages from Jinja2 templates; every asset served from this package).

Routes: ``/`` the page; ``/api/queue`` the queue as JSON; ``POST /api/label`` one label (``{"object_id",
"label", "note"}``; 404 for an id not in the queue, 400 for a bad label or body); ``/labels.csv`` the export;
``/img/<n>.png`` the card image of the n-th queue object (drawn once by ``fmb.plots.object_card``, the same
drawing as ``fmb show``); ``/static/...`` the page's own CSS and JavaScript. Nothing else is served: image
paths are queue positions, never file names, and StaticFiles refuses paths outside its folder.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from fmb.review import active
from fmb.review.labels import KEYS, LABELS, LabelStore
from fmb.review.queue import ReviewQueue

HERE = Path(__file__).parent
#: how many upcoming objects the page lists
UP_NEXT = 12


class ReviewSession:
    """The queue, its features, the saved labels and the current re-ranking (thread-safe)."""

    def __init__(
        self, queue: ReviewQueue, store: LabelStore, out_dir: Path, seed: int = 0, features: np.ndarray | None = None
    ) -> None:
        self.queue, self.store, self.out_dir, self.seed = queue, store, Path(out_dir), seed
        self.pos = queue.index()
        self.fused = np.array([c.fused for c in queue.candidates])
        self.features = active.queue_features(queue) if features is None else features
        self.lock = threading.Lock()
        self.draw_lock = threading.Lock()
        self.rows: dict | None = None
        self.version = 0
        self._rerank()

    def _labels_by_pos(self) -> dict[int, str]:
        return {self.pos[o]: lab.label for o, lab in self.store.labels.items() if o in self.pos}

    def _rerank(self) -> None:
        self.ranked = active.rerank(self.features, self.fused, self._labels_by_pos(), self.seed)
        self.order = active.order(self.ranked, self.fused, set(self._labels_by_pos()))
        self.version += 1

    def card(self, i: int, place: int | None = None) -> dict[str, Any]:
        c, r = self.queue.candidates[i], self.ranked
        lab = self.store.labels.get(c.object_id)
        rel, dist = float(r.relevance[i]), float(r.distance[i])
        return {
            "index": i,
            "object_id": c.object_id,
            "place": place,
            "anomaly_rank": c.anomaly_rank,
            "fused": round(c.fused, 4),
            "score": round(float(r.score[i]), 4),
            "relevance": None if np.isnan(rel) else round(rel, 3),
            "distance": None if np.isnan(dist) else round(dist, 3),
            "systems": [{"system": k, "rank": v} for k, v in c.ranks.items()],
            "catalogue": c.catalogue,
            "image": f"/img/{i}.png",
            "label": lab.label if lab else None,
            "note": lab.note if lab else "",
        }

    def state(self) -> dict[str, Any]:
        with self.lock:
            nxt = [self.card(i, p) for p, i in enumerate(self.order[:UP_NEXT], 1)]
            done = sorted(self.store.labels.values(), key=lambda x: (x.time, x.object_id), reverse=True)
            return {
                "version": self.version,
                "total": len(self.queue.candidates),
                "labelled": len(done),
                "remaining": len(self.order),
                "systems": self.queue.systems,
                "next": nxt,
                "recent": [
                    {"object_id": x.object_id, "label": x.label, "note": x.note, "time": x.time} for x in done[:10]
                ],
                "keys": KEYS,
                "labels": list(LABELS),
            }

    def label(self, object_id: str, label: str, note: str) -> None:
        """Save one label and re-rank; KeyError for an id not in the queue, ValueError for a bad label."""
        if object_id not in self.pos:
            raise KeyError(object_id)
        if label not in LABELS:
            raise ValueError(f"label {label!r} is not one of {', '.join(LABELS)}")
        with self.lock:
            place = self.order.index(self.pos[object_id]) + 1 if self.pos[object_id] in self.order else 0
            self.store.set(object_id, label, note, position=place)
            self._rerank()

    def image(self, i: int) -> Path | None:
        """The card PNG of queue object ``i`` (drawn on first request), None when the data set is gone."""
        from fmb.plots.object_card import save_object_card
        from fmb.report.gallery import fetch_rows, open_run_dataset

        c = self.queue.candidates[i]
        path = self.out_dir / "cards" / f"card-{i:05d}.png"
        with self.draw_lock:
            if path.exists():
                return path
            if self.rows is None:
                ds = open_run_dataset(self.queue.runs[0])
                self.rows = fetch_rows(ds, [x.object_id for x in self.queue.candidates])
            row = self.rows.get(c.object_id)
            if row is None:
                return None
            z = c.catalogue.get("redshift")
            title = f"object {c.object_id}" + (f", z = {z:.3f}" if isinstance(z, float) else "")
            return save_object_card(row, path, title=title)


def make_app(session: ReviewSession):
    """The Starlette application of one review session."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
    from starlette.templating import Jinja2Templates

    templates = Jinja2Templates(directory=str(HERE / "templates"))

    async def index(request: Request):
        return templates.TemplateResponse(
            request,
            "index.html",
            {
                "keys": KEYS,
                "systems": session.queue.systems,
                "total": len(session.queue.candidates),
                "alpha": active.ALPHA,
                "dims": len(session.queue.systems),
            },
        )

    def queue(request: Request):
        return JSONResponse(session.state())

    async def label(request: Request):
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get("object_id"), (str, int)):
            return JSONResponse({"error": "give object_id and label"}, status_code=400)
        oid, lab, note = str(body["object_id"]), body.get("label"), body.get("note") or ""
        if not isinstance(note, str) or len(note) > 2000:
            return JSONResponse({"error": "note must be text of at most 2000 characters"}, status_code=400)
        from starlette.concurrency import run_in_threadpool

        try:
            await run_in_threadpool(session.label, oid, lab, note)
        except KeyError:
            return JSONResponse({"error": f"object_id {oid} is not in the review queue"}, status_code=404)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(session.state())

    def export(request: Request):
        return Response(
            session.store.csv_bytes(),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="review-labels.csv"'},
        )

    def image(request: Request):
        i = request.path_params["n"]
        if not 0 <= i < len(session.queue.candidates):
            return JSONResponse({"error": f"no queue object {i}"}, status_code=404)
        path = session.image(i)
        if path is None:
            return JSONResponse({"error": "the data set cannot be read again"}, status_code=404)
        return FileResponse(path, media_type="image/png")

    routes = [
        Route("/", index),
        Route("/api/queue", queue),
        Route("/api/label", label, methods=["POST"]),
        Route("/labels.csv", export),
        Route("/img/{n:int}.png", image),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes)
