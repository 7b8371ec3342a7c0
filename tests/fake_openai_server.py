"""A scripted OpenAI-compatible chat/completions server on 127.0.0.1, for tests and benches. No network.

It answers like a Qwen-VL model served by vLLM: it decodes the image it received, finds the dark marks in it
(the bounding box of pixels darker than `MARK_THRESHOLD`) and prints that box in the family's own convention
(Qwen2-VL 0-1000 grid tokens, Qwen2.5-VL JSON in absolute encoded pixels, Qwen3-VL JSON on the 0-1000 grid),
so a test can check that a mark drawn at known page pixels comes back at the same page pixels.

Behaviours are scripted per request, in arrival order (`Script.actions`, then `Script.default`), or by a rule
(`Script.rule(request_record, n) -> action`):

    ok          a canned answer (after `latency` seconds)
    500         HTTP 500
    429         HTTP 429 with `Retry-After: <retry_after>`
    400         HTTP 400 (a client error: never retried)
    hang        sleep `hang_seconds` (past the client's timeout), then close without answering
    garbage     HTTP 200 whose body is not JSON
    badtext     HTTP 200, valid JSON, message content is random junk (the parser must record an error)
    close       send the status line and half the headers/body, then close the connection
    length      a canned answer cut short, with finish_reason "length"

Every request is recorded (image sizes, prompt, sampling params, timing, max requests in flight). The server
is bounded: it shuts itself down after `lifetime` seconds, and every sleep is capped.

Run standalone for a bench: ``python tests/fake_openai_server.py --latency 0.2 --max-concurrency 16``; it prints
``URL http://127.0.0.1:PORT/v1`` and serves ``GET /stats`` (JSON) and ``POST /reset``.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

MARK_THRESHOLD = 100
"""Pixels darker than this (L channel) belong to the mark; anti-aliased text edges stay out."""
MARK_TEXT = "MARK"
MAX_SLEEP = 30.0
"""No scripted sleep lasts longer than this."""


@dataclass
class RequestRecord:
    """What the server saw for one request."""

    n: int
    action: str
    model: str | None
    image_sizes: list[tuple[int, int]]
    image_mime: list[str]
    prompt: str
    system: str | None
    max_tokens: int | None
    temperature: float | None
    repetition_penalty: float | None
    authorization: str | None
    t_arrival: float
    t_done: float = 0.0
    in_flight_at_arrival: int = 0


@dataclass
class Script:
    """How the server behaves. `actions` are consumed in arrival order, then `default` applies."""

    family: str = "qwen2.5"
    latency: float = 0.0
    actions: list[str] = field(default_factory=list)
    default: str = "ok"
    rule: Callable[[RequestRecord, int], str | None] | None = None
    retry_after: float = 1.0
    hang_seconds: float = 5.0
    max_concurrency: int = 0  # like vLLM --max-num-seqs: requests beyond it queue; 0 = unlimited
    text: str = MARK_TEXT
    lifetime: float = 300.0
    detect_marks: bool = True  # False: answer a fixed box without decoding pixels (cheap, for benches)


def mark_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    """Bounding box [x0, y0, x1, y1) of the dark pixels in encoded pixels, or None for a blank image."""
    mask = image.convert("L").point(lambda v: 255 if v < MARK_THRESHOLD else 0)
    return mask.getbbox()


def canned_answer(family: str, size: tuple[int, int], box: tuple[int, int, int, int] | None, text: str) -> str:
    """What a perfect model of `family` prints for one line `text` at `box` (encoded pixels)."""
    if box is None:
        return "[]" if family != "qwen2" else ""
    w, h = size
    x0, y0, x1, y1 = box
    if family == "qwen2.5":
        coords = [x0, y0, x1, y1]
    else:  # qwen2 and qwen3: a 0-1000 grid over the encoded image
        coords = [round(x0 / w * 1000), round(y0 / h * 1000), round(x1 / w * 1000), round(y1 / h * 1000)]
    if family == "qwen2":
        return (
            f"<|object_ref_start|>{text}<|object_ref_end|>"
            f"<|box_start|>({coords[0]},{coords[1]}),({coords[2]},{coords[3]})<|box_end|>"
        )
    return "```json\n" + json.dumps([{"bbox_2d": coords, "text_content": text}]) + "\n```"


class FakeOpenAIServer:
    """A threaded scripted server; use as a context manager or call `start()` / `stop()`."""

    def __init__(self, script: Script | None = None, *, port: int = 0) -> None:
        self.script = script or Script()
        self.records: list[RequestRecord] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.count = 0
        self._sem: threading.BoundedSemaphore | None = None
        self._stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/").endswith("/stats"):
                    self._json(200, server.stats())
                elif self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.rstrip("/").endswith("/reset"):
                    server.reset()
                    self._json(200, {"ok": True})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                server.handle_completion(self, body)

            def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self._handler = Handler
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Timer | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        if self.script.max_concurrency:
            self._sem = threading.BoundedSemaphore(self.script.max_concurrency)
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._watchdog = threading.Timer(self.script.lifetime, self.stop)
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self.lock:
            self.records.clear()
            self.count = 0
            self.max_in_flight = self.in_flight

    def stats(self) -> dict:
        with self.lock:
            records = [asdict(r) for r in self.records]
            return {"count": self.count, "max_in_flight": self.max_in_flight, "records": records}

    # --- one request -------------------------------------------------------------------------------------

    def _next_action(self, record: RequestRecord) -> str:
        script = self.script
        if script.rule is not None:
            chosen = script.rule(record, record.n)
            if chosen:
                return chosen
        if record.n < len(script.actions):
            return script.actions[record.n]
        return script.default

    def handle_completion(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        t0 = time.perf_counter()
        with self.lock:
            n = self.count
            self.count += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            in_flight = self.in_flight
        try:
            record, images = _parse_request(n, body, h.headers.get("Authorization"), t0, self.script.detect_marks)
            record.in_flight_at_arrival = in_flight
            record.action = self._next_action(record)
            with self.lock:
                self.records.append(record)
            if self._sem is not None:
                with self._sem:
                    self._act(h, record, images)
            else:
                self._act(h, record, images)
            record.t_done = time.perf_counter()
        finally:
            with self.lock:
                self.in_flight -= 1

    def _act(self, h: BaseHTTPRequestHandler, record: RequestRecord, images: list[Image.Image]) -> None:
        script = self.script
        action = record.action
        if script.latency:
            time.sleep(min(script.latency, MAX_SLEEP))
        send = h._json  # type: ignore[attr-defined]
        if action == "500":
            send(500, {"error": {"message": "scripted internal error"}})
        elif action == "400":
            send(400, {"error": {"message": "scripted bad request"}})
        elif action == "429":
            send(429, {"error": {"message": "scripted rate limit"}}, {"Retry-After": f"{script.retry_after:g}"})
        elif action == "hang":
            self._stopping.wait(min(script.hang_seconds, MAX_SLEEP))
            h.close_connection = True
        elif action == "garbage":
            data = b"<html>\x00\xff not json at all"
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        elif action == "close":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "4096")
            h.end_headers()
            h.wfile.write(b'{"id": "chatcmpl-fake", "choices": [{"mess')
            h.wfile.flush()
            h.close_connection = True
        else:
            text = script.text
            if action == "badtext":
                rng = random.Random(record.n)
                content = "".join(rng.choice("{}[]()<>|,.:0123456789 abcxyz_\"'\n") for _ in range(200))
            else:
                size = images[0].size if images else (1, 1)
                if script.detect_marks:
                    box = mark_box(images[0]) if images else None
                else:  # a fixed box in the middle of the image
                    box = (size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4)
                content = canned_answer(script.family, size, box, text)
            finish = "stop"
            if action == "length":
                content, finish = content[: max(1, len(content) // 2)], "length"
            send(200, _completion(record, content, finish))


def _parse_request(
    n: int, body: bytes, authorization: str | None, t0: float, decode: bool = True
) -> tuple[RequestRecord, list[Image.Image]]:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = {}
    images: list[Image.Image] = []
    mimes: list[str] = []
    prompt_parts: list[str] = []
    system = None
    for msg in payload.get("messages", []):
        content = msg.get("content")
        if msg.get("role") == "system":
            system = content if isinstance(content, str) else json.dumps(content)
            continue
        if isinstance(content, str):
            prompt_parts.append(content)
            continue
        for part in content or []:
            if part.get("type") == "text":
                prompt_parts.append(part.get("text", ""))
            elif part.get("type") == "image_url":
                url = part["image_url"]["url"]
                head, _, data = url.partition(",")
                mimes.append(head)
                img = Image.open(io.BytesIO(base64.b64decode(data)))  # reads the header: size and mode
                if decode:
                    img.load()
                images.append(img)
    record = RequestRecord(
        n=n,
        action="",
        model=payload.get("model"),
        image_sizes=[im.size for im in images],
        image_mime=mimes,
        prompt="\n".join(prompt_parts),
        system=system,
        max_tokens=payload.get("max_tokens"),
        temperature=payload.get("temperature"),
        repetition_penalty=payload.get("repetition_penalty"),
        authorization=authorization,
        t_arrival=t0,
    )
    return record, images


def _completion(record: RequestRecord, content: str, finish: str) -> dict:
    w, h = record.image_sizes[0] if record.image_sizes else (0, 0)
    prompt_tokens = (w // 28) * (h // 28) + len(record.prompt.split())
    return {
        "id": f"chatcmpl-fake-{record.n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": record.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": max(1, len(content) // 4),
            "total_tokens": prompt_tokens + max(1, len(content) // 4),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--family", default="qwen2.5", choices=["qwen2", "qwen2.5", "qwen3"])
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--max-concurrency", type=int, default=16)
    ap.add_argument("--lifetime", type=float, default=900.0)
    ap.add_argument("--no-detect", action="store_true", help="Answer a fixed box; do not decode the pixels.")
    args = ap.parse_args()
    script = Script(
        family=args.family, latency=args.latency, max_concurrency=args.max_concurrency, lifetime=args.lifetime,
        detect_marks=not args.no_detect,
    )
    server = FakeOpenAIServer(script, port=args.port).start()
    print(f"URL {server.url}", flush=True)
    try:
        server._stopping.wait(args.lifetime + 1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
