"""Set up a run: model, a queue of compression specs (form adapts to the method), dimensions,
profile, device. Every field validates inline with the compression module's own messages.

Start runs what the screen shows: the queued specs, or the form's spec when nothing is queued,
preceded by the dense baseline `none` while "include baseline" is ticked (the default). The
"Start runs" line under the queue always spells out that list.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.validation import Function, Integer
from textual.widgets import (
    Button,
    Checkbox,
    Footer,
    Input,
    Label,
    OptionList,
    Select,
    SelectionList,
    Static,
)
from textual.widgets.option_list import Option

from ...compress.spec import BNB_VARIANTS, METHODS, NM_PATTERNS, CompressionSpec, parse_specs, validate
from ...compress.types import CALIBRATION_PRECISION_HELP, CALIBRATION_PRECISIONS, CALIBRATION_SOURCES
from ...device import DEVICES, DTYPE_CHOICES, DTYPE_HELP
from ...errors import CtrustError
from ...modelstore import DEFAULT_MODEL, human_size, list_models
from ...textsafe import safe_text
from ...trust import DIMENSION_IDS, PROFILES, available_ids, dimension_meta
from ...trust.rules import DEFAULT_RULES, RULE_SETS
from ..widgets.render import inert
from .base import CtrustScreen

RULE_LABELS = {"paper": "paper (the paper's scoring code)", "robust": "robust (tolerant parser)"}
PATTERNS = ("unstructured",) + tuple(f"{n}:{m}" for n, m in NM_PATTERNS)
# Input validators: Textual marks a bad field as the user types; reading a field runs the same check
GROUP = Integer(failure_description="group size must be an integer, e.g. 128, or -1 per channel")
NSAMPLES = Integer(minimum=1, failure_description="calibration samples must be an integer >= 1 (paper: 128)")
LIMIT = Integer(minimum=1, failure_description="limit must be an integer >= 1 (or blank for every prompt)")
SEED = Integer(minimum=0, failure_description="seed must be an integer >= 0")


def parse_ratio(text: str) -> float:
    """'0.5' or '50%' -> 0.5 (the range itself is the spec's to check: one message for CLI and UI)."""
    text = text.strip()
    return float(text.rstrip("%")) / (100 if text.endswith("%") else 1)


def _is_ratio(text: str) -> bool:
    try:
        parse_ratio(text)
    except ValueError:
        return False
    return True


SPARSITY = Function(_is_ratio, "sparsity must be a number in (0, 1), e.g. 0.5 or 50%")

def dimension_label(dim_id: str) -> str:
    return f"{dim_id} — {dimension_meta(dim_id).title}"


class SetupScreen(CtrustScreen):
    NAV = "setup"
    HELP = "tab moves between fields; space ticks dimensions and checkboxes"
    BINDINGS = [
        Binding("ctrl+r", "start", "Start run", id="setup.start", priority=True),
        Binding("a", "add", "Add spec", id="setup.add"),
        Binding("delete", "remove", "Remove spec", id="setup.remove"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.queue: list[CompressionSpec] = []  # what the user added; the baseline is the checkbox

    def compose(self) -> ComposeResult:
        yield self.nav()
        with Horizontal(id="setup-cols"):
            with VerticalScroll(id="setup-left", classes="column"):
                yield Label("Model", classes="section")
                yield Select([], id="model", prompt="choose a model from models/", allow_blank=True)
                yield Input(placeholder="…or a folder path / cached hub id", id="model-path")
                yield Label("Compression", classes="section")
                yield Select([(f"{m.title} ({name})" if m.title.lower() != name else m.title, name) for name, m in METHODS.items()],
                             id="method", value="gptq", allow_blank=False)
                with Horizontal(classes="row", id="row-bits"):
                    yield Label("bits", classes="field")
                    yield Select([("4-bit", 4)], id="bits", value=4, allow_blank=False)
                with Horizontal(classes="row", id="row-group"):
                    yield Label("group", classes="field")
                    yield Input("128", id="group", placeholder="128, or -1 per channel", validators=[GROUP])
                with Horizontal(classes="row", id="row-flags"):
                    yield Checkbox("act-order", True, id="act-order")
                    yield Checkbox("symmetric", True, id="sym")
                with Horizontal(classes="row", id="row-pattern"):
                    yield Label("pattern", classes="field")
                    yield Select([(p, p) for p in PATTERNS], id="pattern", value="2:4", allow_blank=False)
                with Horizontal(classes="row", id="row-sparsity"):
                    yield Label("sparsity", classes="field")
                    yield Input("0.5", id="sparsity", placeholder="0 < s < 1", validators=[SPARSITY])
                with Horizontal(classes="row", id="row-variant"):
                    yield Label("variant", classes="field")
                    yield Select([(v, v) for v in BNB_VARIANTS], id="variant", value="nf4", allow_blank=False)
                with Horizontal(classes="row", id="row-calib"):
                    yield Label("calib", classes="field")
                    yield Select([(s, s) for s in CALIBRATION_SOURCES], id="calibration", value="c4",
                                 allow_blank=False)
                with Horizontal(classes="row", id="row-samples"):
                    yield Label("samples", classes="field")
                    yield Input("32", id="nsamples", placeholder="calibration samples (paper 128)",
                                validators=[NSAMPLES])
                with Horizontal(classes="row", id="row-precision"):
                    yield Label("precision", classes="field")
                    yield Select([(p, p) for p in CALIBRATION_PRECISIONS], id="precision", value="auto",
                                 allow_blank=False, tooltip=CALIBRATION_PRECISION_HELP)
                yield Static(id="spec-preview", classes="validation")
                yield Button("Add to queue (a)", id="add", variant="primary")
                yield Input(placeholder="…or type specs: none, gptq-4b-g128, wanda-2:4", id="specs")
                yield Label("Queue (runs in order; delete removes)", classes="section")
                yield OptionList(id="queue")
            with VerticalScroll(id="setup-right", classes="column"):
                yield Label("Dimensions", classes="section")
                yield SelectionList[str](id="dims")
                with Horizontal(classes="row"):
                    yield Label("profile", classes="field")
                    yield Select([(p, p) for p in PROFILES], id="profile",
                                 value="smoke", allow_blank=False)
                with Horizontal(classes="row"):
                    yield Label("device", classes="field")
                    yield Select([(d, d) for d in DEVICES], id="device", value="auto", allow_blank=False)
                with Horizontal(classes="row"):
                    yield Label("dtype", classes="field")
                    yield Select([(d, d) for d in DTYPE_CHOICES], id="dtype", value="auto", allow_blank=False,
                                 tooltip=DTYPE_HELP)
                with Horizontal(classes="row"):
                    yield Label("rules", classes="field")
                    yield Select([(RULE_LABELS[r], r) for r in RULE_SETS], id="rules", value=DEFAULT_RULES,
                                 allow_blank=False)
                with Horizontal(classes="row"):
                    yield Label("prompts", classes="field")
                    yield Select([("model's own chat template", "model"), ("fork: as the paper rendered them", "fork")],
                                 id="prompt-format", value="model", allow_blank=False)
                with Horizontal(classes="row"):
                    yield Label("limit", classes="field")
                    yield Input("", id="limit", placeholder="max prompts per dimension (blank = all)",
                                validators=[LIMIT], valid_empty=True)
                with Horizontal(classes="row"):
                    yield Label("seed", classes="field")
                    yield Input("0", id="seed", validators=[SEED])
                yield Checkbox("include baseline (none, the dense model)", True, id="baseline")
                yield Static(id="setup-errors", classes="validation")
                yield Button("Start run (ctrl+r)", id="start", variant="success")
        yield Static(id="will-run")  # always in view: what Start will run, in order
        yield Footer()

    def on_mount(self) -> None:
        entries = [e for e in list_models(self.capp.models_dir) if e.kind in ("model", "compressed")]
        # on-disk size and format beside each name: a packed 4-bit variant is ~1/3 of its dense sibling
        # (names and formats come from folders and JSON files: shown literally, never as markup)
        options = [(safe_text(f"{'  └ ' if e.kind == 'compressed' else ''}{e.name}  ·  {human_size(e.size_bytes)}"
                              f"  ·  {e.storage}"), e.name) for e in entries]
        model = self.query_one("#model", Select)
        model.set_options(options)
        names = [e.name for e in entries]
        if DEFAULT_MODEL in names:
            model.value = DEFAULT_MODEL
        elif names:
            model.value = names[0]
        avail = set(available_ids())
        dims = self.query_one("#dims", SelectionList)
        for d in DIMENSION_IDS:
            if d in avail:
                dims.add_option((dimension_label(d), d, True))
        self._method_changed("gptq")
        self._refresh_queue()

    # -- compression form -----------------------------------------------------------------
    def _method_changed(self, method: str) -> None:
        info = METHODS[method]
        bits = self.query_one("#bits", Select)
        if info.bits:
            bits.set_options([(f"{b}-bit", b) for b in info.bits])
            bits.value = 4 if 4 in info.bits else info.bits[0]
        pattern = self.query_one("#pattern", Select).value
        show = {
            "row-bits": info.kind == "quant",
            "row-group": info.kind == "quant",
            "row-flags": info.kind == "quant",
            "row-pattern": info.kind == "prune",
            "row-sparsity": info.kind == "prune" and pattern == "unstructured",
            "row-variant": info.kind == "bnb",
            "row-calib": info.calibrated,
            "row-samples": info.calibrated,
            "row-precision": info.calibrated,
        }
        for wid, visible in show.items():
            self.query_one(f"#{wid}").display = visible
        self.query_one("#act-order", Checkbox).display = method == "gptq"
        if info.kind == "quant":  # the method's reference default: AWQ asymmetric, GPTQ/RTN symmetric
            self.query_one("#sym", Checkbox).value = info.default_sym
        self._validate_form()

    @on(Select.Changed, "#method")
    def _on_method(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL:
            self._method_changed(str(event.value))

    @on(Select.Changed, "#pattern")
    def _on_pattern(self, event: Select.Changed) -> None:
        self._method_changed(str(self.query_one("#method", Select).value))

    @on(Select.Changed)
    @on(Input.Changed)
    @on(Checkbox.Changed)
    def _on_any_change(self, event: Any) -> None:
        if getattr(event, "input", None) is not None and event.input.id in ("specs",):
            return
        self._validate_form()

    def field(self, selector: str) -> str:
        """A text field's value, checked by its own validators (one clear error otherwise)."""
        widget = self.query_one(selector, Input)
        result = widget.validate(widget.value)
        if result is not None and not result.is_valid:
            raise CtrustError(f"{result.failure_descriptions[0]} (got {widget.value.strip()!r})")
        return widget.value.strip()

    def form_spec(self) -> CompressionSpec:
        """The spec the form describes; raises InvalidSpec / CtrustError with an inline message."""
        method = str(self.query_one("#method", Select).value)
        info = METHODS[method]
        spec = CompressionSpec(method=method)
        if info.kind == "quant":
            group = int(self.field("#group") or "128")
            bits = self.query_one("#bits", Select).value
            spec = replace(spec, bits=None if bits is Select.NULL else int(bits), group_size=group,
                           act_order=self.query_one("#act-order", Checkbox).value,
                           sym=self.query_one("#sym", Checkbox).value)
        elif info.kind == "prune":
            pattern = str(self.query_one("#pattern", Select).value)
            if pattern == "unstructured":
                spec = replace(spec, sparsity=parse_ratio(self.field("#sparsity")))
            else:
                n, m = pattern.split(":")
                spec = replace(spec, n=int(n), m=int(m))
        elif info.kind == "bnb":
            spec = replace(spec, variant=str(self.query_one("#variant", Select).value))
        return validate(spec)

    def calibration(self):
        from ...compress.types import CalibrationConfig

        n = int(self.field("#nsamples") or "32")
        return CalibrationConfig(source=str(self.query_one("#calibration", Select).value), nsamples=n,
                                 precision=str(self.query_one("#precision", Select).value))  # validates itself

    def _validate_form(self) -> None:
        preview = self.query_one("#spec-preview", Static)
        try:
            spec = self.form_spec()
            if spec.calibrated:
                self.calibration()
        except CtrustError as exc:
            preview.update(Text(f"✗ {exc}", style="bold red"))
            preview.set_class(True, "invalid")
            self._show_will_run()
            return
        preview.set_class(False, "invalid")
        preview.update(Text(f"✓ {spec}  ({spec.describe()}) — {spec.info.description}", style="green"))
        self._show_will_run()

    # -- queue ------------------------------------------------------------------------------
    def _refresh_queue(self) -> None:
        ol = self.query_one("#queue", OptionList)
        ol.clear_options()
        for i, s in enumerate(self.queue):
            ol.add_option(Option(Text(f"{i + 1}. {s}  ·  {s.describe()}"), id=str(s)))
        self._show_will_run()

    def specs_to_run(self) -> list[CompressionSpec]:
        """The queue, or the form's spec when the queue is empty; the baseline first when ticked."""
        specs = list(self.queue) or [self.form_spec()]
        if self.query_one("#baseline", Checkbox).value and not any(s.is_dense for s in specs):
            specs.insert(0, CompressionSpec())
        return specs

    def _show_will_run(self) -> None:
        line = self.query_one("#will-run", Static)
        try:
            specs = self.specs_to_run()
        except CtrustError:
            line.update(Text("Start runs: nothing yet (the form's spec is invalid and the queue is empty)",
                             style="red"))
            return
        t = Text("Start runs: ", style="bold")
        t.append(" → ".join(str(s) for s in specs))
        if not self.queue:
            t.append("  (the form's spec; nothing queued)", style="dim")
        line.update(t)

    def _add(self, spec: CompressionSpec) -> None:
        if any(str(s) == str(spec) for s in self.queue):
            self.notify(f"{spec} is already queued", severity="warning", timeout=2)
            return
        self.queue.append(spec)
        self._refresh_queue()

    def action_add(self) -> None:
        try:
            spec = self.form_spec()
        except CtrustError as exc:
            self.notify(str(exc), title="invalid compression", severity="error")
            return
        self._add(spec)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "add":
            self.action_add()
        elif event.button.id == "start":
            self.run_worker(self.action_start(), exclusive=True, group="setup-start")

    @on(Input.Submitted, "#specs")
    def _typed_specs(self, event: Input.Submitted) -> None:
        try:
            specs = parse_specs(event.value)
        except CtrustError as exc:
            self.query_one("#spec-preview", Static).update(Text(f"✗ {exc}", style="bold red"))
            return
        for s in specs:
            self._add(s)
        event.input.value = ""

    def action_remove(self) -> None:
        ol = self.query_one("#queue", OptionList)
        if ol.highlighted is None or not self.queue:
            return
        del self.queue[ol.highlighted]
        self._refresh_queue()

    def action_focus_field(self, field: str) -> None:
        target = {"model": "#model", "method": "#method", "specs": "#specs", "dims": "#dims",
                  "profile": "#profile", "limit": "#limit"}.get(field)
        if target:
            self.query_one(target).focus()

    # -- start ------------------------------------------------------------------------------
    def build_request(self) -> dict[str, Any]:
        """Everything the run worker needs (plain values; RunConfig is built inside the worker)."""
        typed = self.query_one("#model-path", Input).value.strip()
        model_sel = self.query_one("#model", Select).value
        model = typed or ("" if model_sel is Select.NULL else str(model_sel))
        if not model:
            raise CtrustError(f"choose a model (none found in {self.capp.models_dir}; "
                              "run `ctrust models import-default`) or type a path")
        specs = self.specs_to_run()
        dims = tuple(d for d in DIMENSION_IDS if d in self.query_one("#dims", SelectionList).selected)
        if not dims:
            raise CtrustError("select at least one dimension")
        limit_text = self.field("#limit")
        limit = int(limit_text) if limit_text else None
        seed = int(self.field("#seed") or "0")
        calibration = self.calibration()
        return {
            "model": model,
            "compressions": tuple(specs),
            "dimensions": dims,
            "profile": str(self.query_one("#profile", Select).value),
            "device": str(self.query_one("#device", Select).value),
            "dtype": str(self.query_one("#dtype", Select).value),
            "seed": seed,
            "limit": limit,
            "calibration": calibration,
            "rules": str(self.query_one("#rules", Select).value),
            "prompt_format": str(self.query_one("#prompt-format", Select).value),
        }

    async def action_start(self) -> None:
        errors = self.query_one("#setup-errors", Static)
        try:
            request = self.build_request()
        except CtrustError as exc:
            errors.update(Text(f"✗ {exc}", style="bold red"))
            self.notify(str(exc), title="cannot start", severity="error")
            return
        errors.update(inert(""))
        run_screen = self.app.get_screen("run")
        if getattr(run_screen, "running", False):
            self.notify("a run is in progress; cancel it on the Run screen (4, then x) first", severity="warning")
            return
        await self.app.switch_mode("run")
        run_screen.start(request)  # type: ignore[attr-defined]
