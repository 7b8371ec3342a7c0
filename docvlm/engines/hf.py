"""The `hf` engine: a checkpoint of a family whose transformers class exists, run in-process.

Families (docvlm.families; transformers 5.24): Qwen2-VL, Qwen2.5-VL, Qwen3-VL, PaliGemma
(PaliGemmaForConditionalGeneration), Florence-2 (Florence2ForConditionalGeneration, an encoder-decoder: its
generate returns decoder ids only, see `_output_offset`; the prompt is its task token), LLaVA-NeXT
(LlavaNextForConditionalGeneration). DeepSeek-OCR has no transformers class (only DeepSeek-OCR 2,
`deepseek_ocr2`): run it with --engine openai (vLLM).

- The family comes from the checkpoint's config (`model_type`), unless --family forces it.
- The model loads lazily, once, on the first generate (or when the plan needs the family / device memory).
- No torchvision needed: when AutoProcessor fails because the video processor wants torchvision, the processor
  is built from its parts (PIL image processor, tokenizer, chat template) by an image-only subclass.
- Images arrive at their planned encoded size; each call passes a size budget that makes the processor's
  smart_resize the identity on them, and the resulting image_grid_thw is checked against the plan.
- Batched greedy generation with left padding; output decoded with special tokens kept (only pad/eos cut).
- A stopping criterion ends a row early when its text starts looping (the runaway guard of docvlm.engines.vlm
  then retries it once with a repetition penalty).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import EngineInfo
from docvlm.engines.vlm import TileRequest, TileResponse, VlmEngine, detect_repetition
from docvlm.errors import DocvlmError, MissingExtraError, ModelLoadError, UsageError

if TYPE_CHECKING:
    from docvlm.datamodel import Family
    from docvlm.engines.device import DeviceDecision
    from docvlm.options import ConvertOptions

HF_FAMILIES: tuple[str, ...] = ("qwen2", "qwen2.5", "qwen3", "paligemma", "florence2", "llava-next")
"""The families this engine runs (their transformers class exists and a tiny checkpoint test covers them)."""


def _hf_tables() -> tuple[dict[str, Family], dict[str, str], dict[str, str]]:
    """model_type -> family, model class, processor class, from the family registry."""
    from docvlm.families import get_family

    types: dict[str, Family] = {}
    models: dict[str, str] = {}
    processors: dict[str, str] = {}
    for name in HF_FAMILIES:
        fam = get_family(name)
        for model_type in fam.model_types:
            types[model_type] = name  # type: ignore[assignment]
            if fam.hf_model_class:
                models[model_type] = fam.hf_model_class
            if fam.hf_processor_class:
                processors[model_type] = fam.hf_processor_class
    return types, models, processors


MODEL_TYPES, MODEL_CLASSES, PROCESSOR_CLASSES = _hf_tables()
QWEN_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
"""Checkpoints whose processor resizes by smart_resize (per-call size budget, image_grid_thw check)."""
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")
REPETITION_CHECK_EVERY = 16
"""The stopping criterion decodes a row's tail every this many new tokens."""
REPETITION_TAIL_TOKENS = 256


def require_hf() -> None:
    """Raise MissingExtraError naming the pip command when torch or transformers is missing."""
    import importlib.util

    for package in ("torch", "transformers"):
        if importlib.util.find_spec(package) is None:
            raise MissingExtraError(package, "hf")


def linearize_patch_embed(model: Any) -> bool:
    """Run the vision tower's patch embedding as one matmul instead of a Conv3d.

    The Conv3d's kernel equals its stride and the processor hands it patches already flattened in
    (channel, time, row, col) order, so it is exactly `patches @ weight.reshape(out, -1).T (+ bias)`. On CPU,
    PyTorch's bf16 Conv3d takes a slow path (about 8x slower than the same product as a matmul in fp32, and
    most of the vision tower's time on a page); the matmul uses the fast GEMM kernels. Returns True if patched.
    """
    import torch

    embed = getattr(getattr(getattr(model, "model", None), "visual", None), "patch_embed", None)
    proj = getattr(embed, "proj", None)
    if not isinstance(proj, torch.nn.Conv3d) or tuple(proj.kernel_size) != tuple(proj.stride):
        return False
    if any(tuple(proj.padding)) or tuple(proj.dilation) != (1, 1, 1) or proj.groups != 1:
        return False
    weight = proj.weight.reshape(proj.out_channels, -1)  # a view: shares the loaded parameter
    bias = proj.bias

    def forward(hidden_states: torch.Tensor) -> torch.Tensor:
        flat = hidden_states.to(dtype=weight.dtype).reshape(-1, weight.shape[1])
        return torch.nn.functional.linear(flat, weight, bias)

    embed.forward = forward
    return True


class HfEngine(VlmEngine):
    """Runs a Qwen-VL checkpoint (hub id or local folder) with transformers."""

    name = "hf"

    def __init__(self, options: ConvertOptions) -> None:
        if not options.model:
            raise UsageError("--engine hf needs --model: a hub id (Qwen/Qwen2.5-VL-3B-Instruct) or a local folder")
        super().__init__(options, family=None)
        self.model_id = options.model
        self._lock = threading.RLock()
        self._config: Any = None
        self._model_type: str | None = None
        self._decision: DeviceDecision | None = None
        self._model: Any = None
        self._processor: Any = None
        self._eos_ids: set[int] = set()
        self._pad_id: int | None = None
        self._detail_extra: list[str] = []
        self._load_seconds: float | None = None

    # --- lazy loading -----------------------------------------------------------------------------------

    def _load_config(self) -> Any:
        with self._lock:
            if self._config is not None:
                return self._config
            require_hf()
            from transformers import AutoConfig

            try:
                config = AutoConfig.from_pretrained(self.model_id)
            except Exception as exc:  # noqa: BLE001 - any failure here means the model cannot be used
                raise ModelLoadError(
                    f"cannot read the model config of {self.model_id!r}: {type(exc).__name__}: {exc}. "
                    "Pass a local folder holding config.json, or a hub id reachable from this machine"
                ) from exc
            model_type = getattr(config, "model_type", None)
            if model_type not in MODEL_TYPES:
                raise ModelLoadError(
                    f"{self.model_id!r} is a {model_type!r} checkpoint; the hf engine runs model_type "
                    f"{', '.join(MODEL_TYPES)} (families {', '.join(HF_FAMILIES)}); serve other families with "
                    "vLLM and use --engine openai"
                )
            detected = MODEL_TYPES[model_type]
            if self.options.family and self.options.family != detected:
                self._detail_extra.append(
                    f"--family {self.options.family} overrides the config's {model_type} ({detected})"
                )
            self.family = self.options.family or detected
            self._model_type = model_type
            from docvlm.families import get_family

            self.family_entry = get_family(self.family).for_config(config)
            self._config = config
            return config

    def resolve_family(self) -> Family:
        self._load_config()
        return self.family

    def decision(self) -> DeviceDecision:
        """The device/precision decision (computed once; needs the config for the model size)."""
        with self._lock:
            if self._decision is None:
                from docvlm.engines.device import (
                    count_safetensors_params,
                    decide,
                    estimate_params_from_config,
                    probe_hardware,
                )

                config = self._load_config()
                local = Path(self.model_id)
                params = count_safetensors_params(local) if local.is_dir() else None
                if params is None:
                    params = estimate_params_from_config(config)
                self._decision = decide(
                    device=self.options.device, dtype=self.options.dtype, quant=self.options.quant,
                    param_count=params, facts=probe_hardware(),
                )
            return self._decision

    def device_memory_bytes(self) -> int | None:
        return self.decision().device_memory_bytes

    def load(self) -> None:
        """Load processor and model once per engine (thread-safe). Raises ModelLoadError / MissingExtraError."""
        with self._lock:
            if self._model is not None:
                return
            import time

            started = time.perf_counter()
            decision = self.decision()
            print(f"docvlm hf: {self.model_id}: {decision.device} {decision.dtype} quant={decision.quant}: "
                  f"{decision.reason}", file=sys.stderr)
            self._processor = self._load_processor()
            self._model = self._load_model(decision)
            tok = self._processor.tokenizer
            tok.padding_side = "left"
            gen = getattr(self._model, "generation_config", None)
            eos = getattr(gen, "eos_token_id", None)
            eos_list = eos if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
            self._eos_ids = {int(i) for i in eos_list}
            if tok.eos_token_id is not None:
                self._eos_ids.add(int(tok.eos_token_id))
            for name in ("<|im_end|>", "<|endoftext|>"):
                tid = tok.convert_tokens_to_ids(name)
                if isinstance(tid, int) and tid >= 0 and tid != getattr(tok, "unk_token_id", None):
                    self._eos_ids.add(tid)
            self._pad_id = tok.pad_token_id if tok.pad_token_id is not None else getattr(gen, "pad_token_id", None)
            if self._pad_id is None and self._eos_ids:
                self._pad_id = min(self._eos_ids)
            self._load_seconds = time.perf_counter() - started

    def _load_processor(self) -> Any:
        from transformers import AutoProcessor

        try:
            return AutoProcessor.from_pretrained(self.model_id)
        except Exception as exc:  # noqa: BLE001 - typically ImportError: the video processor needs torchvision
            first_error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        try:
            processor = self._processor_from_parts()
        except DocvlmError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(
                f"cannot build the processor of {self.model_id!r}: AutoProcessor failed ({first_error}); "
                f"building it from its parts failed too ({type(exc).__name__}: {exc})"
            ) from exc
        self._detail_extra.append(f"image-only processor (AutoProcessor: {first_error[:80]})")
        return processor

    def _processor_from_parts(self) -> Any:
        """Image processor (PIL) + tokenizer + chat template, in an image-only subclass of the family's processor.

        A processor's sub-processors are the modality arguments of its `__init__`; a subclass whose `__init__`
        takes only image_processor, tokenizer and chat_template never asks for the video processor.
        """
        import transformers
        from transformers import AutoImageProcessor, AutoTokenizer

        base = getattr(transformers, PROCESSOR_CLASSES[self._model_type or "qwen2_vl"])

        class ImageOnlyProcessor(base):  # type: ignore[misc, valid-type]
            def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
                base.__init__(self, image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

        image_processor = AutoImageProcessor.from_pretrained(self.model_id)
        tokenizer = AutoTokenizer.from_pretrained(self.model_id)
        template = self._chat_template(tokenizer)
        return ImageOnlyProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)

    def _chat_template(self, tokenizer: Any) -> str | None:
        folder = Path(self.model_id)
        if folder.is_dir():
            jinja = folder / "chat_template.jinja"
            if jinja.is_file():
                return jinja.read_text(encoding="utf-8")
            js = folder / "chat_template.json"
            if js.is_file():
                import json

                return json.loads(js.read_text(encoding="utf-8")).get("chat_template")
        template = getattr(tokenizer, "chat_template", None)
        if isinstance(template, dict):
            template = template.get("default")
        if not template:
            raise ModelLoadError(
                f"{self.model_id!r} has no chat template (chat_template.jinja / chat_template.json / tokenizer)"
            )
        return template

    def _load_model(self, decision: DeviceDecision) -> Any:
        import torch
        import transformers

        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[decision.dtype]
        cls = getattr(transformers, MODEL_CLASSES.get(self._model_type or "", ""), None)
        cls = cls or transformers.AutoModelForImageTextToText
        kwargs: dict[str, Any] = {"dtype": dtype}
        if decision.quant != "none":
            import importlib.util

            if importlib.util.find_spec("bitsandbytes") is None:
                raise MissingExtraError("bitsandbytes", "gpu")
            if importlib.util.find_spec("accelerate") is None:
                raise MissingExtraError("accelerate", "gpu")
            from transformers import BitsAndBytesConfig

            skip = list(decision.skip_modules)
            if decision.quant == "4bit":
                kwargs["quantization_config"] = BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                    bnb_4bit_compute_dtype=dtype, llm_int8_skip_modules=skip,
                )
            else:
                kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
            kwargs["device_map"] = {"": decision.device}
        elif decision.is_cuda:
            kwargs["device_map"] = {"": decision.device}
        try:
            model = cls.from_pretrained(self.model_id, **kwargs)
        except DocvlmError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(
                f"cannot load the weights of {self.model_id!r} ({cls.__name__}, {decision.device}, {decision.dtype}, "
                f"quant={decision.quant}): {type(exc).__name__}: {exc}"
            ) from exc
        model.eval()
        if not decision.is_cuda and linearize_patch_embed(model):
            self._detail_extra.append("patch embedding run as a matmul (CPU Conv3d is slow in bf16)")
        if decision.quant != "none":
            self._detail_extra.append(self._quant_report(model))
        return model

    @staticmethod
    def _quant_report(model: Any) -> str:
        """Which linear layers were quantized: the vision tower must have none."""
        quantized, visual_quantized = 0, 0
        for name, module in model.named_modules():
            if type(module).__name__ in ("Linear4bit", "Linear8bitLt"):
                quantized += 1
                if name.startswith("model.visual"):
                    visual_quantized += 1
        return f"{quantized} linear layers quantized, {visual_quantized} of them in model.visual"

    def quantized_module_names(self) -> list[str]:
        """Names of the bitsandbytes layers of the loaded model (for tests and `info`)."""
        self.load()
        return [n for n, m in self._model.named_modules() if type(m).__name__ in ("Linear4bit", "Linear8bitLt")]

    # --- generation -------------------------------------------------------------------------------------

    def generate_batch(self, requests: Sequence[TileRequest]) -> list[TileResponse]:
        """Greedy batched generation; requests with the same settings share one generate call."""
        if not requests:
            return []
        self.load()
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.max_new_tokens, r.repetition_penalty), []).append(i)
        out: list[TileResponse | None] = [None] * len(requests)
        for (max_new, penalty), idxs in groups.items():
            for i, resp in zip(idxs, self._generate_group([requests[i] for i in idxs], max_new, penalty), strict=True):
                out[i] = resp
        return [r for r in out if r is not None]

    def _generate_group(self, requests: list[TileRequest], max_new: int, penalty: float | None) -> list[TileResponse]:
        import torch

        try:
            inputs = self.prepare_inputs(requests)
        except DocvlmError as exc:
            return [TileResponse(text="", stop_reason="error", error=str(exc)) for _ in requests]
        stopped: set[int] = set()
        try:
            with self._lock, torch.inference_mode():
                generated = self._model.generate(
                    **inputs, max_new_tokens=max_new, do_sample=False, repetition_penalty=penalty,
                    pad_token_id=self._pad_id,
                    stopping_criteria=self._stopping(self._output_offset(inputs), stopped),
                )
        except torch.cuda.OutOfMemoryError:
            if len(requests) > 1:  # one at a time before giving up
                torch.cuda.empty_cache()
                return [r for req in requests for r in self._generate_group([req], max_new, penalty)]
            return [TileResponse(text="", stop_reason="error", error="CUDA out of memory on one tile: lower "
                                 "--max-visual-tokens or use --quant 4bit")]
        except Exception as exc:  # noqa: BLE001 - a failed generate is these tiles' error, the batch goes on
            return [TileResponse(text="", stop_reason="error", error=f"generate failed: {type(exc).__name__}: {exc}")
                    for _ in requests]
        return self._decode(inputs, generated, max_new, stopped)

    def render_chat(self, request: TileRequest) -> str:
        """The text for one tile: the chat template's [system], user: [image, prompt], assistant turn opened; for
        a family without a chat template (PaliGemma) the prompt itself (its processor adds the image tokens)."""
        if self.family_policy().prompt_style == "plain":
            return request.prompt
        messages: list[dict] = []
        if request.system:
            messages.append({"role": "system", "content": [{"type": "text", "text": request.system}]})
        messages.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": request.prompt}]})
        return self._processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def prepare_inputs(self, requests: Sequence[TileRequest]) -> Any:
        """Tokenize and preprocess a batch; checks that the processor kept every image at its planned size.

        The size budget passed per call (shortest_edge = one token's pixels, longest_edge = the largest image's
        area) makes smart_resize the identity on images whose sides are multiples of the factor.
        """
        self.load()
        if self._model_type not in QWEN_MODEL_TYPES:
            return self._prepare_fixed(requests)
        ip = self._processor.image_processor
        patch = int(ip.patch_size)
        factor = patch * int(ip.merge_size)
        for r in requests:
            w, h = r.image.size
            if w % factor or h % factor:
                raise DocvlmError(f"tile image {w}x{h} is not a multiple of the {factor}-px resize factor")
        largest = max(r.image.size[0] * r.image.size[1] for r in requests)
        texts = [self.render_chat(r) for r in requests]
        inputs = self._processor(
            text=texts, images=[r.image.convert("RGB") for r in requests], padding=True, return_tensors="pt",
            images_kwargs={"size": {"shortest_edge": factor * factor, "longest_edge": largest}},
        )
        grids = inputs["image_grid_thw"].tolist()
        for r, (_, gh, gw) in zip(requests, grids, strict=True):
            if (gw * patch, gh * patch) != tuple(r.image.size):
                raise DocvlmError(
                    f"the processor resized a tile from {r.image.size[0]}x{r.image.size[1]} to "
                    f"{gw * patch}x{gh * patch}: boxes would drift; this is a docvlm bug, please report it"
                )
        inputs.pop("token_type_ids", None)
        return inputs.to(self._model.device)

    def _prepare_fixed(self, requests: Sequence[TileRequest]) -> Any:
        """Inputs for a fixed-resolution family (PaliGemma, LLaVA-NeXT): every tile must be a size the processor
        keeps as it is (the family's `processor_keeps`), so the printed frame is the planned tile."""
        entry = self.family_policy()
        ip = self._processor.image_processor
        for r in requests:
            if not entry.processor_keeps(ip, r.image.size):
                raise DocvlmError(
                    f"tile image {r.image.size[0]}x{r.image.size[1]} would be resized or padded by the {entry.title} "
                    "processor of this checkpoint: boxes would drift; this is a docvlm bug, please report it"
                )
        texts = [self.render_chat(r) for r in requests]
        inputs = self._processor(text=texts, images=[r.image.convert("RGB") for r in requests], padding=True,
                                 return_tensors="pt")
        return inputs.to(self._model.device)

    def _stopping(self, prompt_len: int, stopped: set[int]) -> Any:
        """A criterion that ends a row whose decoded tail loops; the rows it ended are added to `stopped`."""
        from transformers import StoppingCriteria, StoppingCriteriaList

        tokenizer = self._processor.tokenizer

        class StopOnRepetition(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):  # noqa: ANN001
                import torch

                n_new = input_ids.shape[1] - prompt_len
                done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
                if n_new < REPETITION_CHECK_EVERY or n_new % REPETITION_CHECK_EVERY:
                    return done
                tails = input_ids[:, max(prompt_len, input_ids.shape[1] - REPETITION_TAIL_TOKENS):]
                for i, text in enumerate(tokenizer.batch_decode(tails, skip_special_tokens=False)):
                    if i not in stopped and detect_repetition(text) is not None:
                        stopped.add(i)
                    done[i] = i in stopped
                return done

        return StoppingCriteriaList([StopOnRepetition()])

    def _output_offset(self, inputs: Any) -> int:
        """Where the new tokens start in `generate`'s rows: after the prompt (decoder-only), after the decoder
        start token (an encoder-decoder such as Florence-2 returns decoder ids only)."""
        if getattr(self._model.config, "is_encoder_decoder", False):
            return 1
        return int(inputs["input_ids"].shape[1])

    def _decode(self, inputs: Any, generated: Any, max_new: int, stopped: set[int]) -> list[TileResponse]:
        tokenizer = self._processor.tokenizer
        prompt_len = self._output_offset(inputs)
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        out = []
        for i, (row, n_prompt) in enumerate(zip(generated[:, prompt_len:].tolist(), prompt_tokens, strict=True)):
            end = next((k for k, t in enumerate(row) if t in self._eos_ids), None)
            content = row if end is None else row[:end]
            n_gen = len(content) + (0 if end is None else 1)
            text = tokenizer.decode(content, skip_special_tokens=False)
            if i in stopped:
                stop = "repetition"  # ended by StopOnRepetition (the rest of the row is padding)
            elif end is not None:
                stop = "eos"
            else:
                stop = "length" if len(row) >= max_new else "eos"
            if stop == "length" and detect_repetition(text) is not None:
                stop = "repetition"
            out.append(TileResponse(text=text, prompt_tokens=int(n_prompt), generated_tokens=n_gen, stop_reason=stop))
        return out

    # --- info -------------------------------------------------------------------------------------------

    def info(self) -> EngineInfo:
        d = self._decision
        detail = []
        if d is not None:
            detail.append(d.reason)
        detail.extend(self._detail_extra)
        if self._load_seconds is not None:
            detail.append(f"loaded in {self._load_seconds:.1f} s")
        else:
            detail.append("model not loaded yet")
        try:
            import transformers

            detail.append(f"transformers {transformers.__version__}")
        except ImportError:
            pass
        return EngineInfo(
            name=self.name,
            model=self.model_id,
            family=getattr(self, "family", None),
            device=d.device if d else None,
            dtype=d.dtype if d else None,
            quant=d.quant if d else None,
            detail="; ".join(detail),
        )
