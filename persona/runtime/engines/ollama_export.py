"""An adapter version as an Ollama model: `persona adapters export vN --ollama DIR`.

Ollama runs GGUF models and LoRAs (llama.cpp inside) but has no endpoint to load an adapter
at run time: a persona version becomes one of its models instead. DIR gets the base model's
GGUF, the version's GGUF LoRA (persona/runtime/engines/gguf_lora.py) and a `Modelfile`:

    FROM ./base.gguf
    ADAPTER ./adapter.gguf
    TEMPLATE <the base model's chat turns as persona renders them, in Go's template language>
    PARAMETER stop <the turn markers>

`ollama create persona-vN -f DIR/Modelfile` then serves it under the name the `openai`
engine looks for when a server has no adapter endpoints (persona/runtime/engines/
openai_compatible.py). The template is written for the chat formats of the bases persona
ships — ChatML (SmolLM2, Qwen, …) and Gemma's turns — recognised from the tokenizer's own
chat template; Ollama's templates are Go templates, so a Jinja chat template cannot be
carried over as it is.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from persona.errors import ConfigError

CHATML = (
    '{{- range .Messages }}<|im_start|>{{ .Role }}\n'
    '{{ .Content }}<|im_end|>\n'
    '{{ end }}<|im_start|>assistant\n'
)
# Gemma has no system turn: its chat template puts the system text at the top of the first user turn.
GEMMA = (
    '{{- $system := "" }}'
    '{{- range $i, $m := .Messages }}'
    '{{- if eq $m.Role "system" }}{{ $system = $m.Content }}'
    '{{- else if eq $m.Role "user" }}<start_of_turn>user\n'
    '{{ if $system }}{{ $system }}\n\n{{ $system = "" }}{{ end }}{{ $m.Content }}<end_of_turn>\n'
    '{{- else }}<start_of_turn>model\n{{ $m.Content }}<end_of_turn>\n'
    '{{- end }}{{- end }}<start_of_turn>model\n'
)


@dataclass(frozen=True)
class ChatFormat:
    name: str
    template: str
    stops: tuple[str, ...]


FORMATS = (ChatFormat("chatml", CHATML, ("<|im_end|>", "<|im_start|>")), ChatFormat("gemma", GEMMA, ("<end_of_turn>", "<start_of_turn>")))


def chat_format(tokenizer_template: str | None) -> ChatFormat:
    """The format of a tokenizer's (Jinja) chat template, by its turn markers."""
    template = tokenizer_template or ""
    if "<|im_start|>" in template:
        return FORMATS[0]
    if "<start_of_turn>" in template:
        return FORMATS[1]
    raise ConfigError("persona writes Ollama templates for ChatML (SmolLM2, Qwen) and Gemma bases; this base model's chat template is "
                      "neither: write the Modelfile's TEMPLATE yourself")


def modelfile(chat: ChatFormat, *, base: str, adapter: str, temperature: float, top_p: float, repeat_penalty: float, num_ctx: int) -> str:
    lines = [f"# persona adapter for Ollama ({chat.name} turns): ollama create persona-vN -f Modelfile", f"FROM {base}", f"ADAPTER {adapter}",
             f'TEMPLATE """{chat.template}"""']
    lines += [f'PARAMETER stop "{stop}"' for stop in chat.stops]
    lines += [f"PARAMETER temperature {temperature}", f"PARAMETER top_p {top_p}", f"PARAMETER repeat_penalty {repeat_penalty}",
              f"PARAMETER num_ctx {num_ctx}"]
    return "\n".join(lines) + "\n"


def export(folder: Path, *, base_gguf: Path, lora_gguf: Path, chat: ChatFormat, temperature: float, top_p: float, repeat_penalty: float,
           num_ctx: int) -> Path:
    """Write the Modelfile and copies of both GGUF files into `folder`; returns the Modelfile."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(base_gguf, folder / "base.gguf")
        shutil.copyfile(lora_gguf, folder / "adapter.gguf")
        target = folder / "Modelfile"
        partial = folder / "Modelfile.partial"
        partial.write_text(modelfile(chat, base="./base.gguf", adapter="./adapter.gguf", temperature=temperature, top_p=top_p,
                                     repeat_penalty=repeat_penalty, num_ctx=num_ctx), encoding="utf-8")
        partial.replace(target)
    except OSError as exc:
        raise ConfigError(f"cannot write the Ollama model into {folder}: {exc.strerror or exc}") from None
    return target
