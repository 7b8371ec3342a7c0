"""The `openai` engine: planned tiles sent to an OpenAI-compatible server (vLLM, SGLang, Ollama, LM Studio).

Each tile goes out as a lossless PNG (or, with `--tile-format webp`, lossless WebP) data URL at exactly its
planned encoded size, so the server's own resize
(smart_resize with the same factor) changes nothing and the model's coordinate frame stays known. After the
server returns text, everything (guard, parser, geometry, extraction) is the shared VLM code path.

HTTP is the standard library's `http.client`, one keep-alive connection per worker thread, in a thread pool
bounded by `--concurrency`. Why not httpx: a request here is one blocking POST of a few hundred kB and one
JSON answer; the stdlib does that with no extra dependency, threads overlap the waiting (the GIL is released
on socket I/O, zlib and base64), and the engine stays importable in every install.

Failures: 429, 5xx, connection errors and timeouts are retried `--retries` times with exponential backoff and
full jitter (a 429's or 503's `Retry-After` is respected, capped); other 4xx are not retried. After the last
attempt the tile gets a `TileResponse` with `error` set: that page records the error, the batch goes on.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from docvlm.datamodel import EngineInfo
from docvlm.engines.prep import EncodedImage, TileFormat, encode_tile
from docvlm.engines.vlm import TileRequest, TileResponse, VlmEngine
from docvlm.errors import UsageError
from docvlm.families import FAMILY_NAMES

if TYPE_CHECKING:
    from docvlm.datamodel import Family
    from docvlm.options import ConvertOptions


BACKOFF_BASE_S = 0.5
"""First retry waits up to this long (full jitter: uniform in [0, base * 2**attempt])."""
BACKOFF_CAP_S = 20.0
RETRY_AFTER_CAP_S = 60.0
"""A server asking for a longer pause than this is waited for only this long, so a batch never stalls."""
ERROR_BODY_CHARS = 300


def guess_family(model: str) -> Family | None:
    """The family named in a served model name (the registry's `served_patterns`: `Qwen/Qwen2.5-VL-7B-Instruct`,
    Ollama's `qwen2.5vl:7b`, `google/paligemma2-3b-mix-448`, `microsoft/Florence-2-large`,
    `deepseek-ai/DeepSeek-OCR`, `llava-hf/llava-v1.6-mistral-7b-hf`), or None."""
    from docvlm.families import family_for_served_name

    return family_for_served_name(model)  # type: ignore[return-value]


def encode_png_data_url(image) -> str:
    """The image as a PNG base64 data URL, pixels untouched (never resized)."""
    return encode_data_url(image, "png")


def encode_data_url(image, fmt: TileFormat = "png") -> str:
    """The tile as a base64 data URL in `fmt` (--tile-format), pixels untouched (never resized). A tile a
    preparer encoded already (`EncodedImage`) is sent as it is."""
    encoded = image if isinstance(image, EncodedImage) else encode_tile(image, fmt)
    return f"data:{encoded.mime};base64," + base64.b64encode(encoded.data).decode("ascii")


def build_payload(request: TileRequest, model: str, image_url: str) -> dict:
    """The chat/completions body for one tile: [system?, user: [image, text]], greedy."""
    messages: list[dict] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": image_url}},
                {"type": "text", "text": request.prompt},
            ],
        }
    )
    payload: dict = {
        "model": model,
        "messages": messages,
        "temperature": 0,
        "max_tokens": request.max_new_tokens,
    }
    if request.repetition_penalty is not None:
        payload["repetition_penalty"] = request.repetition_penalty  # a vLLM/SGLang extra sampling parameter
    return payload


@dataclass(frozen=True)
class _Attempt:
    """The outcome of one HTTP attempt."""

    response: TileResponse | None = None  # final: success, or an error not worth retrying
    retry_reason: str | None = None  # set when the attempt may be retried
    retry_after_s: float | None = None


SERVER_MEMORY_BYTES = 8 * 2**30


class OpenAIEngine(VlmEngine):
    """Talks to an OpenAI-compatible chat/completions endpoint serving a Qwen-VL model."""

    name = "openai"

    def __init__(
        self,
        options: ConvertOptions,
        *,
        backoff_base_s: float = BACKOFF_BASE_S,
        backoff_cap_s: float = BACKOFF_CAP_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not options.base_url:
            raise UsageError(
                "--engine openai needs --base-url, e.g. --base-url http://localhost:8000/v1 (the server's /v1 root)"
            )
        if not options.model:
            raise UsageError("--engine openai needs --model, the served model name, e.g. Qwen/Qwen2.5-VL-7B-Instruct")
        parts = urlsplit(options.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"--base-url {options.base_url!r} is not an http(s) URL, e.g. http://localhost:8000/v1")
        family = options.family or guess_family(options.model)
        if family is None:
            raise UsageError(
                f"cannot tell the model family from the served model name {options.model!r}: "
                f"pass --family ({', '.join(FAMILY_NAMES)})"
            )
        self.family_source = "--family" if options.family else "guessed from the model name"
        self.api_key: str | None = None
        if options.api_key_env:
            self.api_key = os.environ.get(options.api_key_env)
            if not self.api_key:
                raise UsageError(
                    f"--api-key-env {options.api_key_env}: that environment variable is not set; "
                    f"export {options.api_key_env}=<key>, or drop --api-key-env for a server without auth"
                )
        # the shared VLM code sends tiles in chunks of batch_size: never fewer than --concurrency at a time
        chunk = max(options.batch_size, options.concurrency)
        super().__init__(options if chunk == options.batch_size else options.model_copy(update={"batch_size": chunk}),
                         family)
        self.model = options.model
        # shown in results and messages: never the user:password part of a URL
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        netloc = host + (f":{parts.port}" if parts.port else "")
        self.base_url = f"{parts.scheme}://{netloc}{parts.path}".rstrip("/")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path.rstrip("/") or "") + "/chat/completions"
        self.endpoint = self.base_url + "/chat/completions"
        self.concurrency = options.concurrency
        self.tile_format: TileFormat = options.tile_format
        self.timeout_s = options.timeout
        self.retries = options.retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._sleep = sleep
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid: int | None = None
        self._rng = random.Random()

    def device_memory_bytes(self) -> int | None:
        """The server's GPU is out of sight: plan as for a small (8 GiB) GPU, 4096 visual tokens per request.

        `--max-visual-tokens` overrides it; the CPU default (1280) would cut pages into needless tiles.
        """
        return SERVER_MEMORY_BYTES

    def info(self) -> EngineInfo:
        return EngineInfo(
            name=self.name,
            model=self.model,
            family=self.family,
            device=self.base_url,
            detail=(
                f"OpenAI-compatible server at {self.base_url}; family {self.family} ({self.family_source}); "
                f"concurrency {self.concurrency}, timeout {self.timeout_s:g} s, retries {self.retries}"
            ),
        )

    # --- batch ------------------------------------------------------------------------------------------

    def generate_batch(self, requests: Sequence[TileRequest]) -> list[TileResponse]:
        """Send the tiles concurrently (at most `--concurrency` in flight); one response per tile, in order."""
        if not requests:
            return []
        if len(requests) == 1 or self.concurrency == 1:
            return [self.generate_one(r) for r in requests]
        return list(self._executor().map(self.generate_one, requests))

    def submit(self, requests: Sequence[TileRequest]) -> list[Future[TileResponse]]:
        """Each tile is its own request on the pool (at most `--concurrency` in flight); the server batches."""
        pool = self._executor()
        return [pool.submit(self.generate_one, r) for r in requests]

    def tile_encoding(self) -> TileFormat | None:
        """Tiles go out as --tile-format bytes: a preparer encodes them (off this process's request threads)."""
        return self.tile_format

    def in_flight_target(self) -> int:
        """Tiles the feed keeps submitted: twice --concurrency, so a request leaves as soon as one returns."""
        return 2 * self.concurrency

    def _executor(self) -> ThreadPoolExecutor:
        # a pool made before a fork is unusable in the child: make one per process
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="docvlm-openai")
            self._pool_pid = os.getpid()
        return self._pool

    def generate_one(self, request: TileRequest) -> TileResponse:
        """One tile: encode, POST, retry on transient failures, never raise."""
        try:
            url = (encode_png_data_url(request.image) if self.tile_format == "png"
                   else encode_data_url(request.image, self.tile_format))
            body = json.dumps(build_payload(request, self.model, url)).encode()
        except Exception as exc:  # noqa: BLE001 - an unencodable tile is that tile's error
            return _error(f"cannot encode the tile image: {type(exc).__name__}: {exc}")
        attempts = self.retries + 1
        last_reason = ""
        for attempt in range(attempts):
            try:
                outcome = self._attempt(body)
            except Exception as exc:  # noqa: BLE001 - e.g. an SSL or URL error: this tile's error, not a crash
                self._drop_connection()
                return _error(f"{self.endpoint}: {type(exc).__name__}: {exc}")
            if outcome.response is not None:
                return outcome.response
            last_reason = outcome.retry_reason or "unknown failure"
            if attempt + 1 < attempts:
                self._sleep(self._backoff(attempt, outcome.retry_after_s))
        return _error(
            f"{self.endpoint}: {last_reason}, after {attempts} attempt(s); check that the server is up and "
            f"serving {self.model!r}, or raise --retries / --timeout"
        )

    def _backoff(self, attempt: int, retry_after_s: float | None) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]; at least the server's Retry-After."""
        delay = self._rng.uniform(0.0, min(self.backoff_cap_s, self.backoff_base_s * (2**attempt)))
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, RETRY_AFTER_CAP_S))
        return delay

    # --- one HTTP attempt -------------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout_s)
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001, S110 - closing a broken socket
                pass
        self._local.conn = None

    def _attempt(self, body: bytes) -> _Attempt:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        conn = self._connection()
        try:
            conn.request("POST", self._path, body=body, headers=headers)
            resp = conn.getresponse()
            status = resp.status
            raw = resp.read()
            retry_after = _parse_retry_after(resp.getheader("Retry-After"))
            if resp.getheader("Connection", "").lower() == "close":
                self._drop_connection()
        except TimeoutError:
            self._drop_connection()
            return _Attempt(retry_reason=f"no answer within {self.timeout_s:g} s (--timeout)")
        except (OSError, http.client.HTTPException) as exc:
            self._drop_connection()
            return _Attempt(retry_reason=f"connection error: {type(exc).__name__}: {exc}".rstrip(": "))
        if status == 429 or 500 <= status <= 599:
            return _Attempt(retry_reason=f"HTTP {status}: {_excerpt(raw)}", retry_after_s=retry_after)
        if status != 200:
            return _Attempt(
                response=_error(f"{self.endpoint}: HTTP {status} (not retried): {_excerpt(raw)}")
            )
        return _Attempt(response=self._decode(raw))

    def _decode(self, raw: bytes) -> TileResponse:
        """The completion's text, token usage and stop reason; a malformed body is that tile's error."""
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            content = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return _error(f"{self.endpoint}: the answer is not a chat completion: {_excerpt(raw)}")
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            return _error(f"{self.endpoint}: the completion has no text content: {_excerpt(raw)}")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return TileResponse(
            text=content,
            prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
            generated_tokens=_int_or_none(usage.get("completion_tokens")),
            stop_reason="length" if choice.get("finish_reason") == "length" else "eos",
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _error(message: str) -> TileResponse:
    return TileResponse(text="", stop_reason="error", error=message)


def _excerpt(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").strip().replace("\n", " ")
    return repr(text[:ERROR_BODY_CHARS]) + ("..." if len(text) > ERROR_BODY_CHARS else "")


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
