"""Generation on an OpenAI-compatible server (PERSONA_ENGINE=openai).

Any server that speaks `POST /v1/chat/completions`: vLLM (`--enable-lora`), llama.cpp's
llama-server, Ollama, or a bigger machine's `persona serve` (its raw-model names). The
reply pipeline stays here — recall, the prompt, "not sure", the consistency check,
logging — and only the model call travels.

Adapters: the active version is served under the name `persona-vN`. When it changes,
the server is asked whether it has that name (`GET /v1/models`); if not, it is loaded
(`POST /v1/load_lora_adapter`, vLLM's runtime LoRA API, with the adapter's folder as
the server sees it). Only once the server lists it do requests name it, so a request
never names an adapter the server has not loaded; if loading fails, replies keep the
previous model and the next refresh tries again. The adapter it replaced is then
unloaded (`POST /v1/unload_lora_adapter`), so nightly versions do not pile up.

llama.cpp's `llama-server` has no such endpoint: it loads LoRAs only at start (`--lora
FILE`, the GGUF that `persona adapters gguf` writes beside each adapter) and lists them at
`GET /lora-adapters`. Against it, a version is served only if the server was started
with that version's file; each request then names every LoRA in llama-server's
per-request `"lora"` field, that version's at scale 1 and the others at 0 (one left out
would get its global scale), so switching is still atomic per request.
A version it was not started with is one clear line saying how to restart it.

Ollama (and `persona serve`) cannot load an adapter at run time either: there a version is
a model of its own, made beforehand (`persona adapters export vN --ollama DIR`, then
`ollama create persona-vN -f DIR/Modelfile`). A server that answers the load request with
404 is asked for a model named `persona-vN` (or Ollama's `persona-vN:latest`); one that
has none is one clear line saying how to make it, and replies stay where they were.

What cannot travel: grounding's pull towards the owner's words works on the model's
logits (persona/runtime/grounding.py), which these APIs do not expose; evidence still
decides "not sure" and the consistency check still runs. A forced opening ("not
sure…") is sent as a final assistant message to continue (`continue_final_message`,
which vLLM and `persona serve` honour).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from persona.adapters import served_name
from persona.errors import ModelUnavailable
from persona.runtime import cancellation
from persona.runtime.engines.base import Generated, GenerationSettings, Messages, OnText
from persona.runtime.grounding import GroundingSettings
from persona.runtime.model import BaseModelSpec, count_chat_tokens, load_tokenizer

log = logging.getLogger(__name__)


class OpenAICompatibleGenerator:
    """The `TextGenerator` interface over an OpenAI-compatible HTTP server; thread-safe (httpx clients are)."""

    def __init__(self, spec: BaseModelSpec, settings: GenerationSettings, *, base_url: str, api_key: str | None = None, model: str = "",
                 adapters_dir: Path | None = None, served_adapters_dir: str = "", timeout_s: float = 60.0) -> None:
        if not base_url.strip():
            raise ModelUnavailable("PERSONA_ENGINE=openai needs PERSONA_OPENAI_BASE_URL (e.g. http://127.0.0.1:8000/v1)")
        self.spec = spec
        self.settings = settings
        self.tokenizer = load_tokenizer(spec)  # prompts are fitted to the window here, before they travel
        self.adapter_version: int | None = None
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url + "/", timeout=httpx.Timeout(timeout_s, connect=5.0),
                                    headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
        self._base_model = model
        self._model = model
        self._adapters_dir = adapters_dir
        self._served_adapters_dir = served_adapters_dir
        self._switch = threading.Lock()
        self._wanted: tuple[int | None, str | None] = (None, None)
        self._llama_server = False  # the server is llama.cpp's llama-server (see _detect_llama_server)
        self._lora_folder: Path | None = None  # llama-server: the served version's folder (None: the base model)
        self._server_known = False  # whether _detect_llama_server has had an answer
        self._unstarted: int | None = None  # a version llama-server was not started with (asked again by use_adapter only)
        self._said_no_grounding = False

    @property
    def context_window(self) -> int | None:
        return None  # the server knows it; prompts are fitted to persona's own budget (ReplyEngine.context_tokens)

    def count_tokens(self, messages: Messages) -> int:
        return count_chat_tokens(self.tokenizer, messages)

    def served_models(self) -> list[str]:
        data = self._call("GET", "models")
        return [str(m.get("id")) for m in data.get("data", [])]

    def use_adapter(self, version: int | None, path: str | None) -> None:
        """Serve adapter `version` from now on, once the server has it (None: the base model).
        Raises `ModelUnavailable` when the server cannot be reached or cannot load it; the
        wish is kept, and the next generation tries again before it names any model."""
        with self._switch:
            self._wanted = (version, path)
            self._sync()

    def _sync(self) -> None:
        version, path = self._wanted
        if version == self.adapter_version and self._model:
            return
        self._detect_llama_server()
        if version is None or path is None:
            self._model, self.adapter_version, self._lora_folder = self._base(), None, None
            return
        name = served_name(version)
        if self._llama_server:
            self._pick_started_lora(version, path)
            return
        served = self._served_as(name)
        if served is None:
            self._load(name, version, path)
            served = name
        previous = self._model
        self._model, self.adapter_version, self._unstarted = served, version, None  # only now do requests name it
        log.info("replying with adapter %s on %s", served, self.base_url)
        if previous.startswith("persona-v") and previous != name:
            self._unload(previous)

    def _served_as(self, name: str) -> str | None:
        """The server's name for `name`: itself (vLLM, `persona serve`), or `name:latest` (Ollama's tag)."""
        return next((m for m in self.served_models() if m in (name, f"{name}:latest")), None)

    def _load(self, name: str, version: int, path: str) -> None:
        """vLLM's runtime LoRA loading; a server without that endpoint (Ollama, `persona serve`)
        serves a version only as a model of that name, made there beforehand."""
        with self._reaching():
            response = self._client.post("load_lora_adapter", json={"lora_name": name, "lora_path": self._server_path(path)})
        if response.status_code in (404, 405):
            self._unstarted = version  # as with llama-server: replies go on with what is served until it exists
            staying = f"adapter v{self.adapter_version}" if self.adapter_version else "the base model"
            raise ModelUnavailable(f"{self.base_url} cannot load adapters (POST /load_lora_adapter: HTTP {response.status_code}) and serves no "
                                   f"model named {name}: on Ollama run `persona adapters export v{version} --ollama DIR` and `ollama create "
                                   f"{name} -f DIR/Modelfile`; on another `persona serve`, activate v{version} there. Replies stay on {staying}")
        if response.status_code >= 400:
            self._refused(response, "POST", "load_lora_adapter")
        if self._served_as(name) is None:
            raise ModelUnavailable(f"{self.base_url} accepted adapter {name} but does not list it; replies stay on {self._model or 'nothing'}")

    def _root_url(self, path: str) -> str:
        """An endpoint beside /v1 (llama-server's /lora-adapters)."""
        return f"{self.base_url.removesuffix('/v1')}/{path}"

    def _detect_llama_server(self) -> None:
        """Once the server answers: is it llama-server (its /lora-adapters lists the LoRAs it
        was started with)? Its requests then always name them (see the module's docstring)."""
        if self._server_known:
            return
        with self._reaching():
            response = self._client.get(self._root_url("lora-adapters"))
        self._server_known = True
        try:
            if response.status_code == 200 and isinstance(response.json(), list):
                self._llama_server = True
                log.info("%s is llama.cpp's llama-server: adapters are the LoRAs it was started with", self.base_url)
        except ValueError:
            pass

    def _started_loras(self) -> list[dict[str, Any]]:
        with self._reaching():
            response = self._client.get(self._root_url("lora-adapters"))
        if response.status_code >= 400:
            self._refused(response, "GET", "lora-adapters")
        return list(response.json())

    def _pick_started_lora(self, version: int, path: str) -> None:
        """llama-server: serve `version` through the LoRA it was started with from that
        version's folder (the file `persona adapters gguf` writes there)."""
        folder = Path(self._server_path(path))
        if not any(Path(str(entry.get("path", ""))).parent == folder for entry in self._started_loras()):
            self._unstarted = version
            raise ModelUnavailable(f"llama-server at {self.base_url} was not started with adapter v{version}: run `persona adapters gguf "
                                   f"v{version}` and restart it with --lora {folder}/<that file> (it loads LoRAs only at start); "
                                   f"replies stay on {'adapter v' + str(self.adapter_version) if self.adapter_version else 'the base model'}")
        self._model = self._base()
        self._lora_folder, self.adapter_version, self._unstarted = folder, version, None  # only now do requests apply it
        log.info("replying with adapter v%d (llama-server's LoRA from %s) on %s", version, folder, self.base_url)

    def _lora_field(self, folder: Path | None) -> list[dict[str, Any]]:
        """llama-server's per-request `lora`: every LoRA it holds, the served folder's at
        scale 1 and the rest at 0 — one left out would be applied at its global scale.
        Asked for each request (a local GET): a restarted server may number them anew."""
        started = self._started_loras()
        field = [{"id": entry["id"], "scale": 1.0 if folder is not None and Path(str(entry.get("path", ""))).parent == folder else 0.0}
                 for entry in started]
        if folder is not None and not any(f["scale"] for f in field):
            raise ModelUnavailable(f"llama-server at {self.base_url} no longer holds the served adapter ({folder}): was it restarted "
                                   "without it? Restart it with that --lora, or activate another version")
        return field

    def _unload(self, name: str) -> None:
        """Free the server's copy of an adapter no longer served (nightly retrains would
        otherwise pile them up); a server without the endpoint keeps it, which is harmless."""
        try:
            self._call("POST", "unload_lora_adapter", {"lora_name": name})
        except ModelUnavailable as exc:
            log.debug("%s kept: %s", name, exc.message)

    def generate(self, messages: Messages, *, greedy: bool | None = None, evidence: Sequence[str] = (),
                 grounding: GroundingSettings | None = None, opening: str = "", max_new_tokens: int | None = None,
                 on_text: OnText | None = None, place: str | None = None) -> Generated:
        # `place` is not sent: vLLM's automatic prefix caching and llama-server's prompt cache match prefixes by themselves.
        if evidence and grounding is not None and grounding.enabled and not self._said_no_grounding:
            self._said_no_grounding = True
            log.info("grounding's pull needs the model's logits: with PERSONA_ENGINE=openai replies are generated without it")
        with self._switch:
            if self._wanted[0] is None or self._wanted[0] != self._unstarted:  # a server that lacks it until restarted or created
                self._sync()  # the adapter wished for, if the server was away when it was
            model, lora = self._model, (self._lora_field(self._lora_folder) if self._llama_server else None)
        greedy = self.settings.greedy if greedy is None else greedy
        body: dict[str, Any] = {"model": model, "messages": list(messages),
                                "max_tokens": max_new_tokens or self.settings.max_new_tokens,
                                "temperature": 0.0 if greedy else self.settings.temperature, "top_p": 1.0 if greedy else self.settings.top_p}
        if self.settings.repetition_penalty != 1.0:
            body["repetition_penalty"] = self.settings.repetition_penalty  # vLLM's and persona serve's name for it
        if lora is not None:  # llama-server: the adapter this request applies (all at 0: the base model), its penalty's name
            body["lora"] = lora
            if self.settings.repetition_penalty != 1.0:
                body["repeat_penalty"] = self.settings.repetition_penalty
        if opening:
            body |= {"messages": [*messages, {"role": "assistant", "content": opening}], "continue_final_message": True,
                     "add_generation_prompt": False}
        if on_text is not None:
            text, tokens = self._streamed(body, on_text)
        else:
            data = self._call("POST", "chat/completions", body)
            try:
                text = data["choices"][0]["message"]["content"] or ""
            except (KeyError, IndexError, TypeError):
                raise ModelUnavailable(f"{self.base_url} answered without a completion: {str(data)[:120]}") from None
            tokens = (data.get("usage") or {}).get("completion_tokens")
        if opening and text.startswith(opening):  # some servers repeat the continued message
            text = text[len(opening):]
        return Generated(text.strip(), int(tokens) if tokens is not None else len(self.tokenizer.encode(text, add_special_tokens=False)))

    def _streamed(self, body: dict[str, Any], on_text: OnText) -> tuple[str, int | None]:
        """The completion as server-sent events, each piece handed to `on_text` as it comes."""
        pieces: list[str] = []
        tokens: int | None = None
        request = body | {"stream": True, "stream_options": {"include_usage": True}}
        try:
            with self._reaching(), self._client.stream("POST", "chat/completions", json=request) as response:
                if response.status_code >= 400:
                    response.read()
                    self._refused(response, "POST", "chat/completions")
                for line in response.iter_lines():
                    cancellation.raise_if_cancelled()  # leaving closes the connection: the server stops generating
                    if not line.startswith("data:") or line.strip() == "data: [DONE]":
                        continue
                    event = json.loads(line[5:])
                    if "error" in event:
                        raise ModelUnavailable(f"the model server at {self.base_url} failed mid-reply: {event['error'].get('message', '')}")
                    tokens = (event.get("usage") or {}).get("completion_tokens", tokens)
                    for choice in event.get("choices") or []:
                        if piece := (choice.get("delta") or {}).get("content"):
                            pieces.append(piece)
                            on_text(piece)
        except ValueError:
            raise ModelUnavailable(f"the model server at {self.base_url} streamed something that is not JSON") from None
        return "".join(pieces), tokens

    def close(self) -> None:
        self._client.close()

    def _base(self) -> str:
        if not self._base_model:
            served = [m for m in self.served_models() if not m.startswith("persona-v") and m != "persona"]
            if not served:
                raise ModelUnavailable(f"{self.base_url} lists no base model: set PERSONA_OPENAI_MODEL to the name it serves")
            self._base_model = served[0]
        return self._base_model

    def _server_path(self, path: str) -> str:
        if self._served_adapters_dir and self._adapters_dir is not None:
            try:
                return str(Path(self._served_adapters_dir) / Path(path).resolve().relative_to(self._adapters_dir.resolve()))
            except ValueError:
                pass
        return path

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request; any failure is one `ModelUnavailable` line (what, where, what to check)."""
        with self._reaching():
            response = self._client.request(method, path, json=body)
        if response.status_code >= 400:
            self._refused(response, method, path)
        try:
            return response.json()
        except ValueError:  # vLLM answers the adapter endpoints in plain text ("Success: LoRA adapter … added")
            return {"text": response.text}

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """A server that cannot be reached, or answers too late, as one `ModelUnavailable` line."""
        try:
            yield
        except httpx.TimeoutException:
            raise ModelUnavailable(f"the model server at {self.base_url} did not answer in time (PERSONA_OPENAI_TIMEOUT_S)") from None
        except httpx.TransportError as exc:
            raise ModelUnavailable(f"the model server at {self.base_url} is unreachable ({type(exc).__name__}): is it running?") from None

    def _refused(self, response: httpx.Response, method: str, path: str) -> None:
        try:
            detail = response.json().get("error", {})
            message = detail.get("message") if isinstance(detail, dict) else str(detail)
        except ValueError:
            message = response.text[:200]
        raise ModelUnavailable(f"the model server at {self.base_url} refused {method} /{path}: HTTP {response.status_code} {message or ''}".strip())
