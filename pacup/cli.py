"""The ``pacup`` command line (Typer + rich): a thin skin over :mod:`pacup.pipeline`.

Exit status: 0 success; 1 a failure while processing (unwritable output, model failure,
any item of a folder failing); 2 a usage error (bad option, missing or unreadable input,
size/factor mismatch, empty folder, model not available); 130 interrupted (Ctrl-C).

Messages: results and the summary go to stdout; errors and warnings go to stderr, one line
each, naming the file. ``--debug`` adds the Python traceback. The folder progress bar is
drawn only when stdout and stderr are both terminals and never with ``--quiet``; otherwise
each folder item gets one plain log line. rich drops colours on non-terminals by itself.

This module imports torch and the pipeline only inside the commands, so ``--help`` and
``--version`` cost no more than importing the ``pacup`` package itself.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import __version__

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# Guide images may come in any common image format; paired with inputs by file stem.
GUIDE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

EXIT_CODES_HELP = (
    "[bold]Exit status[/bold]: 0 success; 1 failure while processing (unwritable output, "
    "model failure, any folder item failed); 2 usage error (bad option, missing or "
    "unreadable input, size/factor mismatch, empty folder, model not available)."
)

app = typer.Typer(
    name="pacup",
    help=(
        "RGB-guided joint upsampling of depth maps and optical flow with pixel-adaptive "
        "convolutions.\n\n"
        "[bold]Examples[/bold]: pacup depth LOW.png --guide RGB.png -o OUT.png;  "
        "pacup flow LOW.flo --guide FRAME.png;  pacup models\n\n" + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,  # we print one-line errors; --debug shows the traceback
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Backend(str, Enum):
    torch = "torch"
    onnx = "onnx"  # --model must be an .onnx file written by `pacup export-onnx`


class OnnxMode(str, Enum):
    portable = "portable"
    custom = "custom"


# --------------------------------------------------------------------------- output


def _stdout() -> Console:
    # Created per use: CliRunner and callers may swap sys.stdout/sys.stderr between calls.
    return Console(highlight=False, soft_wrap=True)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _say(console: Console, label: str, style: str, message: str) -> None:
    # Text objects are never parsed for markup, so file names with [brackets] print as-is;
    # soft_wrap keeps each message on one line however narrow the terminal.
    console.print(Text.assemble((label, style), message))


def _error_line(message: str, console: Console | None = None) -> None:
    _say(console or _stderr(), "error: ", "bold red", message)


def _warning_line(message: str, console: Console | None = None) -> None:
    _say(console or _stderr(), "warning: ", "bold yellow", message)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class CliError(Exception):
    """A failure to report as one line and an exit status."""

    def __init__(self, message: str, code: int, cause: BaseException | None = None):
        super().__init__(_one_line(message))
        self.code = code
        self.cause = cause


def _describe_exception(exc: BaseException) -> str:
    text = _one_line(str(exc))
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _classify(exc: BaseException, context: str, writing: bool = False) -> CliError:
    """Map a library exception to a CliError naming the file(s) in ``context``.

    Read problems, bad inputs and model availability are usage errors (2): the command
    cannot work as given. Write problems and anything unexpected are failures (1).
    """
    from . import errors
    from .io import PacupIOError, ReadError, WriteError

    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, PacupIOError):
        # pacup.io messages already start with the file they are about.
        failed = isinstance(exc, WriteError) or (writing and not isinstance(exc, ReadError))
        code = EXIT_FAILED if failed else EXIT_USAGE
        return CliError(str(exc), code, exc)
    if isinstance(exc, errors.ModelNotAvailableError):
        message = _one_line(str(exc))
        if not message.startswith("unknown model"):
            # The library's advice is for Python callers (allow_random=...); keep its
            # diagnosis (first sentence) and give the command-line options instead.
            message = message.split(". ", 1)[0].rstrip(".") + (
                ". Pass --random-weights to run an UNTRAINED network (testing only), "
                "or --model PATH for a trained .safetensors file"
            )
        return CliError(message, EXIT_USAGE, exc)
    if isinstance(exc, errors.ModelFileError):
        return CliError(_one_line(str(exc)), EXIT_USAGE, exc)
    if isinstance(exc, errors.InputError):
        return CliError(f"{context}: {_one_line(str(exc))}", EXIT_USAGE, exc)
    if isinstance(exc, MemoryError):
        return CliError(f"{context}: out of memory (try a smaller --tile, e.g. --tile 64)", EXIT_FAILED, exc)
    return CliError(f"{context}: processing failed: {_describe_exception(exc)}", EXIT_FAILED, exc)


def _report(err: CliError, debug: bool, console: Console | None = None) -> None:
    _error_line(str(err), console)
    if debug and err.cause is not None:
        traceback.print_exception(type(err.cause), err.cause, err.cause.__traceback__, file=sys.stderr)


# --------------------------------------------------------------------------- tasks


@dataclass
class Settings:
    """Everything a depth/flow run needs besides the file names."""

    task: str  # "depth" | "flow"
    factor: Optional[int]
    model: Optional[str]
    device: str
    tile: Optional[int]
    half: bool
    random_weights: bool
    quiet: bool
    debug: bool
    depth_scale: Optional[float] = None
    out_depth_scale: Optional[float] = None
    max_flow: Optional[float] = None
    ensemble: bool = False

    @property
    def supported(self) -> tuple[str, ...]:
        from .io import SUPPORTED_DEPTH, SUPPORTED_FLOW

        return SUPPORTED_DEPTH if self.task == "depth" else SUPPORTED_FLOW

    def default_out_ext(self, low: Path) -> str:
        # Depth keeps the input's format; flow defaults to Middlebury .flo, the one format
        # every flow tool reads.
        return low.suffix.lower() if self.task == "depth" else ".flo"

    # -- reading / writing

    def read_input(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        from .io import read_depth, read_flow

        if self.task == "depth":
            return read_depth(path, depth_scale=self.depth_scale)
        return read_flow(path)

    def write_output(self, path: Path, result: np.ndarray) -> None:
        from .io import write_depth, write_flow

        if self.task == "depth":
            scale = self.out_depth_scale if self.out_depth_scale is not None else self.depth_scale
            write_depth(path, result, depth_scale=scale)
        else:
            write_flow(path, result)

    # -- model

    def upsample(self, low, valid, guide, factor: int) -> np.ndarray:
        import pacup

        fn = pacup.upsample_depth if self.task == "depth" else pacup.upsample_flow
        # The model goes by name/path: the pipeline picks the network for the factor
        # (non-power-of-two factors run the next power of two) and loading is cheap.
        return fn(
            low,
            guide,
            factor=factor,
            model=self.model,
            device=self.device,
            valid=valid,
            tile=self.tile,
            half=self.half,
            allow_random=self.random_weights,
            ensemble=self.ensemble,
        )

    # -- visualisation

    def colorize(self, low, low_valid, result, factor: int) -> tuple[np.ndarray, np.ndarray]:
        """(input, result) colour images with one shared normalisation."""
        from .io import colorize_depth, colorize_flow

        if self.task == "depth":
            values = low[low_valid]
            if values.size:
                vmin, vmax = (float(v) for v in np.percentile(values, [2, 98]))
            else:
                vmin = vmax = None
            return (
                colorize_depth(low, low_valid, vmin=vmin, vmax=vmax),
                colorize_depth(result, vmin=vmin, vmax=vmax),
            )
        low_full = low * np.float32(factor)  # low-res vectors in full-res pixels, like the result
        norm = self.max_flow
        if norm is None:
            mags = np.hypot(low_full[..., 0], low_full[..., 1])[low_valid]
            norm = float(mags.max()) if mags.size and mags.max() > 0 else None
        return colorize_flow(low_full, low_valid, max_norm=norm), colorize_flow(result, max_norm=norm)

    def colorize_result(self, result: np.ndarray) -> np.ndarray:
        from .io import colorize_depth, colorize_flow

        if self.task == "depth":
            return colorize_depth(result)
        return colorize_flow(result, max_norm=self.max_flow)


@dataclass
class Job:
    low: Path
    guide: Path
    out: Path
    vis: Optional[Path] = None
    strip: Optional[Path] = None

    def outputs(self) -> list[Path]:
        return [p for p in (self.out, self.vis, self.strip) if p is not None]


@dataclass
class Done:
    shape: tuple[int, int]
    factor: int
    seconds: float
    warnings: list[str]


def _png_range_warning(settings: Settings, job: Job, result: np.ndarray) -> Optional[str]:
    """Float depth (e.g. metres) written to a 16-bit PNG without a scale loses everything
    below 1 unit; say so instead of silently writing a staircase."""
    if settings.task != "depth" or job.out.suffix.lower() != ".png":
        return None
    scale = settings.out_depth_scale if settings.out_depth_scale is not None else settings.depth_scale
    finite = result[np.isfinite(result) & (result > 0)]
    if finite.size == 0:
        return None
    top = float(finite.max()) * (scale or 1.0)
    if top < 256:
        return (
            f"{job.out}: depth values only reach {top:.3g} after scaling; a 16-bit PNG stores integers, "
            "so this loses precision (pass --out-depth-scale 1000 to store millimetres, or write .npy/.pfm/.tif)"
        )
    return None


def process(job: Job, settings: Settings) -> Done:
    """Read, upsample, write one item. Raises CliError."""
    from .io import read_guide, side_by_side, write_image

    start = time.perf_counter()
    pair = f"{job.low} (guide {job.guide})"
    caught: list[warnings.WarningMessage] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            low, low_valid = settings.read_input(job.low)
            guide = read_guide(job.guide)
        except Exception as exc:  # noqa: BLE001 - classified below
            raise _classify(exc, pair) from None

        try:
            import pacup

            factor = pacup.resolve_factor(low.shape[:2], guide.shape[:2], settings.factor)
            result = settings.upsample(low, low_valid, guide, factor)
        except Exception as exc:  # noqa: BLE001 - classified below
            raise _classify(exc, pair) from None

        try:
            note = _png_range_warning(settings, job, result)
            if note:
                warnings.warn(note, stacklevel=1)
            settings.write_output(job.out, result)
            if job.vis is not None:
                write_image(job.vis, settings.colorize_result(result))
            if job.strip is not None:
                low_rgb, result_rgb = settings.colorize(low, low_valid, result, factor)
                write_image(job.strip, side_by_side([guide, low_rgb, result_rgb]))
        except Exception as exc:  # noqa: BLE001 - classified below
            raise _classify(exc, str(job.out), writing=True) from None

    from .models import RandomWeightsWarning

    messages = []
    for w in caught:
        text = _one_line(str(w.message))
        # The CLI prints its own random-weights warning once per run, not once per file.
        if not issubclass(w.category, RandomWeightsWarning) and text not in messages:
            messages.append(text)
    return Done(tuple(result.shape[:2]), factor, time.perf_counter() - start, messages)


# --------------------------------------------------------------------------- checks


def _image_extension_ok(path: Path) -> bool:
    from PIL import Image

    return path.suffix.lower() in Image.registered_extensions()


def _check_output_path(path: Path, option: str, supported: tuple[str, ...] | None = None, kind: str = "image") -> None:
    """Refuse unusable output paths before any work is done (``supported=None``: any image format)."""
    if path.is_dir():
        raise CliError(f"{path}: is a folder; {option} names an output file unless LOW is a folder", EXIT_USAGE)
    ext = path.suffix.lower()
    ok = ext in supported if supported is not None else _image_extension_ok(path)
    if not ok:
        shown = f"'{ext}'" if ext else "no extension"
        hint = f"supported: {', '.join(supported)}" if supported is not None else "use e.g. .png"
        raise CliError(f"{path}: unknown {kind} file extension ({shown}) for {option}; {hint}", EXIT_USAGE)
    _check_writable_dir(path.parent, path)


def _check_writable_dir(directory: Path, for_path: Path) -> None:
    directory = directory if str(directory) else Path(".")
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise CliError(f"{for_path}: output directory {what}: {directory}", EXIT_FAILED)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CliError(f"{for_path}: output directory is not writable: {directory}", EXIT_FAILED)


def _check_input_file(path: Path, role: str) -> None:
    if not path.exists():
        raise CliError(f"{path}: file not found ({role})", EXIT_USAGE)
    if path.is_dir():
        raise CliError(f"{path}: is a folder; {role} must be a file when LOW is a file", EXIT_USAGE)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CliError("--device cuda: no CUDA device is available (use --device cpu or auto)", EXIT_USAGE)


def _random_weights_banner(settings: Settings) -> None:
    if settings.random_weights:
        _warning_line(
            "--random-weights: running an UNTRAINED network with random weights; the output is "
            "NOT a meaningful upsampling (use it only to test the pipeline and file handling)"
        )


# --------------------------------------------------------------------------- single file


def run_single(low: Path, guide: Path, out: Optional[Path], vis: Optional[Path], strip: Optional[Path],
               out_ext: Optional[str], skip_existing: bool, settings: Settings) -> int:
    _check_input_file(low, "LOW")
    _check_input_file(guide, "--guide")
    if low.suffix.lower() not in settings.supported:
        # Checked here so the message names the input, not the default output derived from it.
        shown = f"'{low.suffix}'" if low.suffix else "no extension"
        raise CliError(
            f"{low}: unknown {settings.task} file extension ({shown}); supported: {', '.join(settings.supported)}",
            EXIT_USAGE,
        )
    if out is None:
        # Default: the current directory, so read-only input folders work and the result
        # is easy to find; "_up" keeps it from ever replacing the input.
        ext = out_ext or settings.default_out_ext(low)
        out = Path(low.stem + "_up" + ext)
    elif out_ext is not None and out.suffix.lower() != out_ext:
        raise CliError(f"{out}: -o has extension '{out.suffix}' but --out-ext is '{out_ext}'", EXIT_USAGE)
    _check_output_path(out, "-o", settings.supported, settings.task)
    if _same_file(out, low) or _same_file(out, guide):
        raise CliError(f"{out}: output would overwrite an input file; choose another -o", EXIT_USAGE)
    for extra, what in ((vis, "--vis"), (strip, "--vis-strip")):
        if extra is not None:
            _check_output_path(extra, what)
            if extra.resolve() == out.resolve():
                raise CliError(f"{extra}: {what} is the same file as the output", EXIT_USAGE)
    job = Job(low, guide, out, vis, strip)
    if skip_existing and all(p.exists() for p in job.outputs()):
        if not settings.quiet:
            _say(_stdout(), "skipped: ", "bold", f"{out} exists (--skip-existing)")
        return EXIT_OK
    _check_device(settings.device)
    _random_weights_banner(settings)

    done = process(job, settings)
    for message in done.warnings:
        _warning_line(message)
    if not settings.quiet:
        h, w = done.shape
        written = ", ".join(str(p) for p in job.outputs())
        model = settings.model or "default"
        details = f"{w}x{h}, x{done.factor}, model {model}, {done.seconds:.2f} s"
        _say(_stdout(), "wrote ", "bold green", f"{written} ({details})")
    return EXIT_OK


# --------------------------------------------------------------------------- folder mode


def _list_inputs(folder: Path, pattern: Optional[str], supported: tuple[str, ...], task: str) -> list[Path]:
    if pattern:
        files = [p for p in folder.glob(pattern) if p.is_file()]
    else:
        files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in supported]
    # Hidden files include pacup's own in-progress temporary files (".name.tmp-*").
    return sorted(p for p in files if not p.name.startswith("."))


def _guides_by_stem(folder: Path, exclude: set[Path]) -> dict[str, list[Path]]:
    guides: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in GUIDE_EXTENSIONS and p not in exclude:
            guides.setdefault(p.stem, []).append(p)
    return guides


class _RateColumn:
    """Factory for a rich column showing files/s (or s/file when slower than 1 file/s)."""

    @staticmethod
    def make():
        from rich.progress import ProgressColumn

        class RateColumn(ProgressColumn):
            def render(self, task):
                speed = task.finished_speed or task.speed
                if not speed:
                    return Text("-- files/s", style="progress.data.speed")
                text = f"{speed:.2f} files/s" if speed >= 1 else f"{1 / speed:.2f} s/file"
                return Text(text, style="progress.data.speed")

        return RateColumn()


def _summary(ok: int, failed: int, skipped: int, seconds: float, interrupted: bool) -> Table:
    table = Table(title="pacup summary" + (" (interrupted)" if interrupted else ""), show_header=True)
    table.add_column("ok", justify="right", style="green")
    table.add_column("failed", justify="right", style="red" if failed else "")
    table.add_column("skipped", justify="right")
    table.add_column("time", justify="right")
    table.add_column("per file", justify="right")
    processed = ok + failed
    per = f"{seconds / processed:.2f} s" if processed else "-"
    table.add_row(str(ok), str(failed), str(skipped), f"{seconds:.1f} s", per)
    return table


def run_folder(low_dir: Path, guide_dir: Path, out_dir: Optional[Path], vis_dir: Optional[Path],
               strip_dir: Optional[Path], out_ext: Optional[str], pattern: Optional[str],
               skip_existing: bool, settings: Settings) -> int:
    if not guide_dir.exists():
        raise CliError(f"{guide_dir}: folder not found (--guide)", EXIT_USAGE)
    if not guide_dir.is_dir():
        raise CliError(f"{guide_dir}: --guide must be a folder when LOW is a folder ({low_dir})", EXIT_USAGE)
    if out_dir is None:
        raise CliError(f"{low_dir}: LOW is a folder, so -o/--output must name an output folder", EXIT_USAGE)
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f"{out_dir}: -o must be a folder when LOW is a folder", EXIT_USAGE)
    for d, what in ((out_dir, "-o"), (vis_dir, "--vis"), (strip_dir, "--vis-strip")):
        if d is not None and d.exists() and os.path.samefile(d, low_dir):
            raise CliError(f"{d}: {what} folder must differ from the input folder", EXIT_USAGE)
    if out_ext is not None and out_ext not in settings.supported:
        raise CliError(
            f"--out-ext '{out_ext}': not a {settings.task} format; supported: {', '.join(settings.supported)}",
            EXIT_USAGE,
        )

    lows = _list_inputs(low_dir, pattern, settings.supported, settings.task)
    if not lows:
        wanted = pattern or " ".join("*" + e for e in settings.supported)
        raise CliError(f"{low_dir}: no input files matching {wanted}", EXIT_USAGE)
    guides = _guides_by_stem(guide_dir, exclude=set(lows))
    _check_device(settings.device)

    for d in (out_dir, vis_dir, strip_dir):
        if d is not None:
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CliError(f"{d}: cannot create output folder: {exc.strerror or exc}", EXIT_FAILED, exc) from None
            _check_writable_dir(d, d)

    jobs: list[tuple[Path, Optional[Job], Optional[str]]] = []  # (low, job, problem)
    stems: dict[str, int] = {}
    for p in lows:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    for p in lows:
        candidates = guides.get(p.stem, [])
        if stems[p.stem] > 1:
            jobs.append((p, None, f"{p}: several inputs share the stem '{p.stem}'; their outputs would collide"))
        elif not candidates:
            jobs.append((p, None, f"{p}: no guide image named '{p.stem}.*' in {guide_dir}"))
        elif len(candidates) > 1:
            names = ", ".join(c.name for c in candidates)
            jobs.append((p, None, f"{p}: several guide images match its stem in {guide_dir}: {names}"))
        else:
            ext = out_ext or settings.default_out_ext(p)
            job = Job(
                p,
                candidates[0],
                out_dir / (p.stem + ext),
                vis_dir / (p.stem + ".png") if vis_dir is not None else None,
                strip_dir / (p.stem + ".png") if strip_dir is not None else None,
            )
            jobs.append((p, job, None))

    err = _stderr()
    out = _stdout()
    # Guides of inputs that --glob left out are expected to go unused; only report guides
    # without any input file at all.
    low_stems = {p.stem for p in low_dir.iterdir() if p.is_file()}
    unused = sorted(stem for stem in guides if stem not in low_stems)
    if unused:
        shown = ", ".join(guides[s][0].name for s in unused[:5]) + (", ..." if len(unused) > 5 else "")
        _warning_line(f"{guide_dir}: {len(unused)} guide image(s) have no input and are ignored: {shown}", err)
    _random_weights_banner(settings)

    ok = failed = skipped = 0
    warned: set[str] = set()
    interrupted = False
    start = time.perf_counter()
    # A bar only when both streams are terminals: with stdout redirected to a log, the log
    # gets one line per file instead.
    show_bar = err.is_terminal and out.is_terminal and not settings.quiet
    progress = None
    if show_bar:
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
        )

        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn.make(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
        )
        progress.start()
        bar = progress.add_task(settings.task, total=len(jobs))
    log = progress.console if progress is not None else err
    total = len(jobs)
    try:
        for index, (low, job, problem) in enumerate(jobs, 1):
            try:
                if problem is not None:
                    raise CliError(problem, EXIT_FAILED)
                assert job is not None
                if skip_existing and all(p.exists() for p in job.outputs()):
                    skipped += 1
                    if progress is None and not settings.quiet:
                        _say(out, f"[{index}/{total}] skipped ", "dim", f"{low.name}: {job.out} exists")
                    continue
                done = process(job, settings)
            except CliError as exc:
                if _is_fatal(exc):
                    raise
                failed += 1
                _report(exc, settings.debug, log)
            else:
                ok += 1
                for message in done.warnings:
                    if message not in warned:  # e.g. "--half is ignored on the CPU" once, not per file
                        warned.add(message)
                        _warning_line(message, log)
                if progress is None and not settings.quiet:
                    _say(out, f"[{index}/{total}] ok ", "green",
                         f"{low.name} -> {job.out} (x{done.factor}, {done.seconds:.2f} s)")
            finally:
                if progress is not None:
                    progress.advance(bar)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if progress is not None:
            progress.stop()

    seconds = time.perf_counter() - start
    if not settings.quiet:
        out.print(_summary(ok, failed, skipped, seconds, interrupted))
    if interrupted:
        _error_line(f"interrupted after {ok + failed + skipped} of {total} files")
        return 130
    return EXIT_FAILED if failed else EXIT_OK


def _is_fatal(exc: CliError) -> bool:
    """Model problems affect every item: stop the batch rather than fail each file alike."""
    from . import errors

    return isinstance(exc.cause, (errors.ModelNotAvailableError, errors.ModelFileError))


# --------------------------------------------------------------------------- commands


def _run(fn: Callable[[], int], debug: bool) -> None:
    try:
        code = fn()
    except CliError as exc:
        _report(exc, debug)
        raise typer.Exit(exc.code) from None
    except KeyboardInterrupt:
        _error_line("interrupted")
        raise typer.Exit(130) from None
    raise typer.Exit(code)


def _positive(name: str):
    def check(value):
        if value is not None and not (value > 0 and np.isfinite(value)):
            raise typer.BadParameter(f"must be a positive number, got {value}", param_hint=name)
        return value

    return check


def _normalise_ext(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    value = value.strip().lower()
    return value if value.startswith(".") else "." + value


_MODEL = "Model and device"
_OUT = "Output"
_FOLDER = "Folder mode"

# Options shared by `pacup depth` and `pacup flow` (Typer reads them from the signatures).
Factor = Annotated[Optional[int], typer.Option(
    "--factor", "-f", help="Upsampling factor, 2 to 16.", show_default="guide size / input size",
    rich_help_panel=_MODEL)]
Model = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Registry name (see `pacup models`), a .safetensors weights file, or an .onnx "
    "file from `pacup export-onnx` (with --backend onnx).",
    show_default="the default model for the factor", rich_help_panel=_MODEL)]
DeviceOpt = Annotated[Device, typer.Option(
    "--device", help="Where to run: auto picks CUDA when available.", rich_help_panel=_MODEL)]
BackendOpt = Annotated[Backend, typer.Option("--backend", help="Inference backend.", rich_help_panel=_MODEL)]
Tile = Annotated[Optional[int], typer.Option(
    "--tile", min=1, help="Tile size in low-res pixels (bounds memory; tiles overlap, so results match).",
    show_default="automatic", rich_help_panel=_MODEL)]
Half = Annotated[bool, typer.Option("--half", help="Half precision (CUDA only).", rich_help_panel=_MODEL)]
Ensemble = Annotated[bool, typer.Option(
    "--ensemble", help="Average the network over the 4 flips of input and guide: 4x the time, a few % lower "
    "error.", rich_help_panel=_MODEL)]
RandomWeights = Annotated[bool, typer.Option(
    "--random-weights", help="Allow an UNTRAINED network when no trained weights are installed (testing only).",
    rich_help_panel=_MODEL)]
Vis = Annotated[Optional[Path], typer.Option(
    "--vis", help="Write a colourised PNG of the result (a folder in folder mode).", rich_help_panel=_OUT)]
Glob = Annotated[Optional[str], typer.Option(
    "--glob", help="Which files of the LOW folder to process (default: every supported extension).",
    show_default=False, rich_help_panel=_FOLDER)]
SkipExisting = Annotated[bool, typer.Option(
    "--skip-existing", help="Skip inputs whose outputs (and requested visualisations) all exist.",
    rich_help_panel=_FOLDER)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors and warnings.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show Python tracebacks with errors.")]


def _common_run(task: str, low: Path, guide: Path, output, factor, model, device, backend, vis, vis_strip,
                out_ext, tile, half, random_weights, glob, skip_existing, quiet, debug, **extra) -> None:
    settings = Settings(
        task=task,
        factor=factor,
        model=model,
        device=device.value,
        tile=tile,
        half=half,
        random_weights=random_weights,
        quiet=quiet,
        debug=debug,
        **extra,
    )
    out_ext = _normalise_ext(out_ext)

    def go() -> int:
        # The pipeline picks the backend from the model: an .onnx file runs in ONNX Runtime.
        is_onnx_model = model is not None and str(model).lower().endswith(".onnx")
        if backend is Backend.onnx and not is_onnx_model:
            raise CliError("--backend onnx needs --model FILE.onnx (`pacup export-onnx` writes one)", EXIT_USAGE)
        if backend is Backend.torch and is_onnx_model:
            raise CliError(f"{model}: an .onnx model runs with --backend onnx", EXIT_USAGE)
        if low.is_dir():
            return run_folder(low, guide, output, vis, vis_strip, out_ext, glob, skip_existing, settings)
        if not low.exists():
            raise CliError(f"{low}: file not found (LOW)", EXIT_USAGE)
        if glob is not None:
            raise CliError("--glob only applies when LOW is a folder", EXIT_USAGE)
        return run_single(low, guide, output, vis, vis_strip, out_ext, skip_existing, settings)

    _run(go, debug)


DEPTH_EPILOG = (
    "[bold]Examples[/bold]\n\n"
    "pacup depth samples/depth/motorcycle_depth_x16.png --guide samples/depth/motorcycle_rgb.png "
    "-o motorcycle_up.png --vis-strip strip.png\n\n"
    "pacup depth low_dir/ --guide rgb_dir/ -o out_dir/ --vis vis_dir/ --skip-existing\n\n"
    "[bold]Files[/bold]: depth .png (16-bit) .npy .pfm .tif/.tiff; 0, NaN and negative values in the input "
    "mean 'no measurement'; output pixels without information are written as 0. The output format "
    "follows -o's extension (default: LOW's format, written as [italic]<LOW stem>_up<ext>[/italic] in "
    "the current directory) and keeps LOW's units. Folder mode pairs LOW/x.* with GUIDE/x.* (any image "
    "format) by file stem and writes OUT/x<ext>.\n\n" + EXIT_CODES_HELP
)

FLOW_EPILOG = (
    "[bold]Examples[/bold]\n\n"
    "pacup flow samples/flow/synth_flow_x8.flo --guide samples/flow/synth_img0.png "
    "-o synth_up.flo --vis synth_up.png --max-flow 32\n\n"
    "pacup flow flow_dir/ --guide frames_dir/ -o out_dir/ --out-ext .flo --vis vis_dir/ --max-flow 40\n\n"
    "[bold]Files[/bold]: flow .flo .png (KITTI 16-bit) .pfm .npy, in the input's pixels; the output "
    "is in full-resolution pixels (vectors multiplied by the factor). The output format follows "
    "-o's extension (default: .flo, written as [italic]<LOW stem>_up.flo[/italic] in the current "
    "directory). --vis uses the Middlebury colour wheel; pass the same --max-flow to every "
    "run to make colours comparable. Folder mode pairs LOW/x.* with GUIDE/x.* (any image format) "
    "by file stem and writes OUT/x.flo.\n\n" + EXIT_CODES_HELP
)


@app.command(epilog=DEPTH_EPILOG, no_args_is_help=True)
def depth(
    low: Annotated[Path, typer.Argument(
        help="Low-resolution depth file, or a folder of them.", show_default=False, metavar="LOW")],
    guide: Annotated[Path, typer.Option(
        "--guide", "-g", help="Full-resolution RGB guide image (a folder when LOW is one).", show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Output file (a folder in folder mode).",
        show_default="<LOW stem>_up<ext> in the current directory", rich_help_panel=_OUT)] = None,
    factor: Factor = None,
    model: Model = None,
    device: DeviceOpt = Device.auto,
    backend: BackendOpt = Backend.torch,
    tile: Tile = None,
    half: Half = False,
    ensemble: Ensemble = False,
    random_weights: RandomWeights = False,
    depth_scale: Annotated[Optional[float], typer.Option(
        "--depth-scale", callback=_positive("--depth-scale"),
        help="Stored units per depth unit (e.g. 1000 for mm PNGs), applied on read and write.",
        show_default="1, values as stored")] = None,
    out_depth_scale: Annotated[Optional[float], typer.Option(
        "--out-depth-scale", callback=_positive("--out-depth-scale"),
        help="Scale of the output file when it differs: --depth-scale 1000 --out-depth-scale 1 writes metres.",
        show_default="--depth-scale", rich_help_panel=_OUT)] = None,
    out_ext: Annotated[Optional[str], typer.Option(
        "--out-ext", help="Output format (.png .npy .pfm .tif) for default and folder-mode names.",
        show_default="LOW's extension", rich_help_panel=_OUT)] = None,
    vis: Vis = None,
    vis_strip: Annotated[Optional[Path], typer.Option(
        "--vis-strip", help="Write a PNG strip: guide | input (nearest) | result, one colour range.",
        rich_help_panel=_OUT)] = None,
    glob: Glob = None,
    skip_existing: SkipExisting = False,
    quiet: Quiet = False,
    debug: Debug = False,
):
    """Upsample a low-resolution depth map guided by a full-resolution RGB image."""
    _common_run("depth", low, guide, output, factor, model, device, backend, vis, vis_strip, out_ext, tile, half,
                random_weights, glob, skip_existing, quiet, debug,
                depth_scale=depth_scale, out_depth_scale=out_depth_scale, ensemble=ensemble)


@app.command(epilog=FLOW_EPILOG, no_args_is_help=True)
def flow(
    low: Annotated[Path, typer.Argument(
        help="Low-resolution flow file, or a folder of them.", show_default=False, metavar="LOW")],
    guide: Annotated[Path, typer.Option(
        "--guide", "-g", help="Full-resolution RGB guide: the flow's first frame (a folder when LOW is one).",
        show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Output file (a folder in folder mode).",
        show_default="<LOW stem>_up.flo in the current directory", rich_help_panel=_OUT)] = None,
    factor: Factor = None,
    model: Model = None,
    device: DeviceOpt = Device.auto,
    backend: BackendOpt = Backend.torch,
    tile: Tile = None,
    half: Half = False,
    ensemble: Ensemble = False,
    random_weights: RandomWeights = False,
    max_flow: Annotated[Optional[float], typer.Option(
        "--max-flow", callback=_positive("--max-flow"),
        help="Flow length (full-res px) drawn fully saturated by --vis/--vis-strip; fix it to compare frames.",
        show_default="the largest length in each image", rich_help_panel=_OUT)] = None,
    out_ext: Annotated[Optional[str], typer.Option(
        "--out-ext", help="Output format (.flo .png .pfm .npy) for default and folder-mode names.",
        show_default=".flo", rich_help_panel=_OUT)] = None,
    vis: Vis = None,
    vis_strip: Annotated[Optional[Path], typer.Option(
        "--vis-strip", help="Write a PNG strip: guide | input (nearest, x factor) | result, one normalisation.",
        rich_help_panel=_OUT)] = None,
    glob: Glob = None,
    skip_existing: SkipExisting = False,
    quiet: Quiet = False,
    debug: Debug = False,
):
    """Upsample a low-resolution optical flow field guided by the full-resolution first frame."""
    _common_run("flow", low, guide, output, factor, model, device, backend, vis, vis_strip, out_ext, tile, half,
                random_weights, glob, skip_existing, quiet, debug, max_flow=max_flow, ensemble=ensemble)


def _is_available(entry) -> bool:
    """Whether the entry's weight file is installed (``entry.available`` when the registry has it)."""
    available = getattr(entry, "available", None)
    if available is not None:
        return bool(available)
    from .models import weights_dirs

    return any((d / entry.file).is_file() for d in weights_dirs())


def _format_scores(scores) -> str:
    if not scores:
        return "-"
    if isinstance(scores, dict):
        parts = []
        for key, value in scores.items():
            shown = f"{value:.3g}" if isinstance(value, float) else str(value)
            parts.append(f"{key} {shown}")
        return ", ".join(parts)
    return str(scores)


@app.command(epilog="[bold]Example[/bold]\n\npacup models\n\n" + EXIT_CODES_HELP)
def models():
    """List the registered models: name, task, factor, whether weights are installed, scores."""
    from .models import list_models

    entries = list(list_models())
    table = Table(title="pacup models")
    table.add_column("name", style="bold")
    table.add_column("task")
    table.add_column("factor", justify="right")
    table.add_column("available")
    table.add_column("scores")
    table.add_column("description")
    for e in entries:
        table.add_row(
            str(e.name),
            str(e.task),
            f"x{e.factor}" if e.factor else "-",
            "[green]yes[/green]" if _is_available(e) else "[red]no[/red]",
            _format_scores(getattr(e, "scores", None)),
            str(getattr(e, "description", "") or ""),
        )
    console = _stdout()
    console.print(table)
    if not any(_is_available(e) for e in entries):
        console.print(
            "No trained weights are installed yet: use --model PATH with a weights file, or "
            "--random-weights to test the pipeline with an untrained network.",
            markup=False,
        )


@app.command("export-onnx", epilog=(
    "[bold]Examples[/bold]\n\npacup export-onnx --task depth --factor 8 -o pac_x8.onnx\n\n"
    "pacup export-onnx --model my_weights.safetensors --mode custom -o mine.onnx\n\n"
    "Then: pacup depth LOW.png --guide RGB.png --backend onnx --model pac_x8.onnx\n\n" + EXIT_CODES_HELP))
def export_onnx(
    model: Model = None,
    task: Annotated[str, typer.Option("--task", help="depth or flow (with --factor, picks the default model).")] = "depth",
    factor: Annotated[int, typer.Option("--factor", "-f", help="Factor of the default model.")] = 8,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Output .onnx file.", show_default="<model>_<mode>.onnx")] = None,
    mode: Annotated[OnnxMode, typer.Option(
        "--mode", help="portable: standard ONNX operators, any provider; custom: one pacup::Pac* node per "
        "PAC layer (native library) with standard-operator fallback bodies.")] = OnnxMode.portable,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset (>= 17).")] = 18,
    fp16: Annotated[bool, typer.Option("--fp16", help="Float16 weights and compute.")] = False,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Compare ONNX Runtime with PyTorch on a sample.")] = True,
    random_weights: RandomWeights = False,
    debug: Debug = False,
):
    """Export a model to ONNX (dynamic height and width) and check it in ONNX Runtime."""

    def go() -> int:
        from .errors import ModelNotAvailableError, PacupError
        from .models import load_model
        from .onnx import OnnxExportError, export_model

        if task not in ("depth", "flow"):
            raise CliError(f"--task must be depth or flow, got {task!r}", EXIT_USAGE)
        try:
            # --task and --factor choose the default model; a named model brings its own.
            module, entry = load_model(model, task=task if model is None else None,
                                       factor=factor if model is None else None, allow_random=random_weights)
        except ModelNotAvailableError as exc:
            raise CliError(f"{_one_line(str(exc)).split('. ')[0]}. Use --model PATH or --random-weights.",
                           EXIT_USAGE, exc)
        except PacupError as exc:
            raise CliError(str(exc), EXIT_USAGE, exc)
        out = output or Path(f"{entry.name}_{mode.value}.onnx")
        try:
            report = export_model(module, out, mode=mode.value, opset=opset, fp16=fp16, check=check)
        except ImportError as exc:
            raise CliError(str(exc), EXIT_USAGE, exc)
        except OnnxExportError as exc:
            raise CliError(str(exc), EXIT_FAILED, exc)
        _stdout().print(report.summary(), markup=False)
        return EXIT_OK

    _run(go, debug)


class Task(str, Enum):
    depth = "depth"
    flow = "flow"


class Variant(str, Enum):
    lite = "lite"
    full = "full"


class Ablation(str, Enum):
    k1 = "k1"
    concat = "concat"


class Loss(str, Enum):
    l1 = "l1"
    mse = "mse"


class LrSchedule(str, Enum):
    cosine = "cosine"
    constant = "constant"


class InitKind(str, Enum):
    default = "default"
    he = "he"


class Protocol(str, Enum):
    A = "A"
    B = "B"
    flow = "flow"


def _check_factor(factor: int) -> None:
    from .models import SUPPORTED_FACTORS

    if factor not in SUPPORTED_FACTORS:
        raise CliError(f"--factor must be one of {', '.join(map(str, SUPPORTED_FACTORS))}, got {factor}", EXIT_USAGE)


def _check_data(specs: list[str], option: str = "--data") -> None:
    for spec in specs:
        if spec.startswith("synthetic"):
            if spec not in ("synthetic", "synthetic-depth", "synthetic-flow"):
                raise CliError(f"{option} {spec}: expected 'synthetic', 'synthetic-depth', 'synthetic-flow' "
                               "or a folder", EXIT_USAGE)
        elif not Path(spec).is_dir():
            raise CliError(f"{spec}: not a folder ({option} takes a folder of RGB + ground truth, or 'synthetic')",
                           EXIT_USAGE)


def _resolve_device(device: Device) -> str:
    """'auto' -> 'cuda' when available else 'cpu'; an unavailable 'cuda' is a usage error."""
    if device is Device.auto:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    _check_device(device.value)
    return device.value


def _write_json(path: Path, obj) -> None:
    import json

    from .io._files import atomic_write

    data = json.dumps(obj, indent=1).encode()
    try:
        atomic_write(path, lambda fh: fh.write(data))
    except Exception as exc:  # noqa: BLE001 - classified as a write failure
        raise _classify(exc, str(path), writing=True) from None


# `pacup train`'s synthetic data by default, per task: the released recipe (weights/README.md).
# The library's TrainConfig has none of these; options of the other task stay 0.
RECIPE = {"depth": {"disparity": 0.5, "clutter": 0.5}, "flow": {"frames": 0.5, "guide_aug": 0.8}}

TRAIN_EPILOG = (
    "[bold]Examples[/bold]\n\n"
    "pacup train --task depth --factor 8 --steps 1500 -o runs/depth-x8\n\n"
    "pacup train --task flow --factor 4 --data synthetic --data my_flow_dataset/ -o runs/flow-x4\n\n"
    "pacup train --task depth --factor 8 -o runs/depth-x8 --resume    # continue after an interruption\n\n"
    "pacup train --task depth --factor 8 --ablation k1 -o runs/depth-x8-k1   # K = 1 ablation\n\n"
    "[bold]Data[/bold]: 'synthetic' renders RGB-D rooms (depth) or FlyingChairs-style layers (flow) on the "
    "fly, deterministic by --seed; a folder holds RGB + ground-truth pairs (see pacup.train.folders), "
    "cropped and degraded on the fly. --data repeats to mix sources. The run folder gets log.jsonl "
    "(one JSON line per --log-every steps), config.json, checkpoints (last.safetensors + last_state.pt, "
    "every --ckpt-every steps and on Ctrl-C) and the final model.safetensors, which "
    "`pacup depth --model` and `pacup eval --method` take. A resumed run continues exactly as an "
    "uninterrupted one would; resumed with more --steps, it follows the longer cosine schedule from "
    "where it stopped (the learning rate rises again).\n\n" + EXIT_CODES_HELP
)


@app.command(epilog=TRAIN_EPILOG)
def train(
    task: Annotated[Task, typer.Option("--task", help="What the network upsamples.")] = Task.depth,
    factor: Annotated[int, typer.Option("--factor", "-f", help="Upsampling factor: 2, 4, 8 or 16.")] = 8,
    variant: Annotated[Optional[Variant], typer.Option(
        "--variant", help="lite (C=16) or full (C=32, the paper's width; about twice the Lite's time per step). "
        "Default: lite, or the --init-from weights' variant.", show_default=False)] = None,
    data: Annotated[Optional[list[str]], typer.Option(
        "--data", help="'synthetic' or a folder of RGB + ground truth; repeat to mix.",
        show_default="synthetic")] = None,
    steps: Annotated[int, typer.Option("--steps", min=0, help="Training steps (batches).")] = 1500,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Crops per step.")] = 8,
    crop: Annotated[int, typer.Option("--crop", min=8, help="Crop size in full-resolution pixels.")] = 128,
    lr: Annotated[float, typer.Option("--lr", callback=_positive("--lr"), help="Adam learning rate (peak).")] = 1e-3,
    lr_schedule: Annotated[LrSchedule, typer.Option(
        "--lr-schedule", help="After the warmup: cosine decay to 5% of --lr over the run, or constant (for short "
        "fine-tunes with --init-from).")] = LrSchedule.cosine,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Steps of linear learning-rate warmup.")] = 150,
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder (log, checkpoints, model).")] = Path("runs/train"),
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in -o from its last checkpoint.")] = False,
    device: DeviceOpt = Device.auto,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads for PyTorch.",
                                                   show_default="PyTorch's default")] = None,
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="bfloat16 mixed precision (CUDA only).")] = True,
    ablation: Annotated[Optional[Ablation], typer.Option(
        "--ablation", help="Train an ablation instead: k1 (same network, K = 1) or concat (plain CNN, RGB "
        "features concatenated).", show_default=False)] = None,
    loss: Annotated[Loss, typer.Option("--loss", help="Loss in the normalised space.")] = Loss.l1,
    degradation: Annotated[Optional[str], typer.Option(
        "--degradation", help="How low-res inputs are made: bicubic (protocol B), point (protocol A), "
        "bilinear_aa, ...", show_default="bicubic for depth, bilinear_aa for flow")] = None,
    noise_std: Annotated[float, typer.Option("--noise-std", min=0.0, help="Gaussian noise on the low-res input (normalised units).")] = 0.0,
    holes: Annotated[float, typer.Option("--holes", min=0.0, max=1.0, help="Fraction of low-res pixels dropped as holes.")] = 0.0,
    occlusion: Annotated[float, typer.Option(
        "--occlusion", min=0.0, max=1.0, help="Depth: share of synthetic scenes whose stereo-occluded ground truth "
        "is invalid (the holes real stereo / RGB-D ground truth has beside depth edges).")] = 0.0,
    misalign: Annotated[float, typer.Option(
        "--misalign", min=0.0, max=1.0, help="Depth: share of synthetic scenes whose guide is shifted against the "
        "depth by up to 4 px (sensors whose depth is registered to the RGB imperfectly).")] = 0.0,
    disparity: Annotated[Optional[float], typer.Option(
        "--disparity", min=0.0, max=1.0, help="Depth: share of synthetic scenes given as disparity (inverse "
        "depth, as stereo gives) instead of depth.", show_default="0.5 for depth")] = None,
    clutter: Annotated[Optional[float], typer.Option(
        "--clutter", min=0.0, max=1.0, help="Depth: share of synthetic scenes that also get shelves, open frames "
        "and heaps of small objects (dense depth edges).", show_default="0.5 for depth")] = None,
    guide_aug: Annotated[Optional[float], typer.Option(
        "--guide-aug", min=0.0, max=1.0, help="Share of synthetic guides given a camera's blur, colour response, "
        "noise and JPEG (domain randomisation).", show_default="0.8 for flow, 0 for depth")] = None,
    guide_blur: Annotated[float, typer.Option(
        "--guide-blur", min=0.0, max=4.0, help="Largest sigma (px) of the Gaussian point-spread function every "
        "synthetic guide gets (drawn from [1/3, 1] of it): real cameras spread an edge over 2-3 px, the "
        "renderer puts it in one.")] = 0.0,
    guide_contrast: Annotated[float, typer.Option(
        "--guide-contrast", min=1.0, max=4.0, help="Largest factor by which a synthetic guide's contrast is "
        "stretched (drawn log-uniformly from [1, it]): the synthetic scenes are lower in contrast than real "
        "guides (1: off).")] = 1.0,
    texture_gain: Annotated[float, typer.Option(
        "--texture-gain", min=1.0, max=16.0, help="Depth: largest factor by which a synthetic scene's surface "
        "textures are strengthened (drawn log-uniformly from [1, it]): strong colour edges with no depth edge are "
        "rarer in the synthetic scenes than in real photographs (1: off).")] = 1.0,
    ema: Annotated[float, typer.Option(
        "--ema", min=0.0, max=0.9999, help="Decay of a moving average of the weights kept during training "
        "(0: off; 0.998 averages about the last 500 steps): model.safetensors is then the average, "
        "raw.safetensors the last step's weights.")] = 0.0,
    frames: Annotated[Optional[float], typer.Option(
        "--frames", min=0.0, max=1.0, help="Flow: share of synthetic objects that are chair-like frames (thin "
        "legs and rails) instead of compact shapes.", show_default="0.5 for flow")] = None,
    two_tone: Annotated[float, typer.Option(
        "--two-tone", min=0.0, max=1.0, help="Flow: share of synthetic layers painted in two textures split by a "
        "cut or stripes (colour edges that move as one, so are no motion edges).")] = 0.0,
    direct: Annotated[bool, typer.Option("--direct", help="Predict the signal itself (the paper) instead of a "
                                         "correction over bicubic.")] = False,
    zero_init_head: Annotated[bool, typer.Option(
        "--zero-init-head", help="Start the last convolution at zero (a residual network then starts exactly "
        "at bicubic).")] = False,
    negative_slope: Annotated[float, typer.Option(
        "--negative-slope", min=0.0, max=0.99, help="Slope below zero of every hidden activation: 0 is ReLU (the "
        "paper; the released models), e.g. 0.1 a leaky ReLU, which keeps a residual network from dying onto "
        "bicubic (its ablations get the same).")] = 0.0,
    guide_pyramid: Annotated[Optional[bool], typer.Option(
        "--guide-pyramid", help="Compute each decoder stage's guidance features on the guide pooled to that "
        "stage's size (a stage pooled by p sees a p times wider neighbourhood), instead of pooling "
        "full-resolution features; same parameters. Default: as the --init-from weights, else off.",
        show_default=False)] = None,
    init: Annotated[InitKind, typer.Option(
        "--init", help="Weight init: PyTorch's default (the released models), or he (He-normal with the true "
        "fan-in of the stride-2 layers, which keeps the signal's scale through deep decoders).")] = InitKind.default,
    init_from: Annotated[Optional[str], typer.Option(
        "--init-from", help="Fine-tune: start from these weights (a model name such as depth-x8, or a "
        ".safetensors file) instead of a random init; the same architecture and factor.",
        show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Model init, synthetic scenes and their order.")] = 0,
    synthetic_pool: Annotated[int, typer.Option(
        "--synthetic-pool", min=1,
        help="Synthetic scenes per epoch (kept in memory when the run comes back to them).")] = 2000,
    val_every: Annotated[int, typer.Option("--val-every", min=0, help="Validate on a fixed synthetic set every N steps (0: never).")] = 500,
    log_every: Annotated[int, typer.Option("--log-every", min=1, help="Log a line every N steps.")] = 50,
    ckpt_every: Annotated[int, typer.Option("--ckpt-every", min=1, help="Checkpoint every N steps.")] = 250,
    max_minutes: Annotated[Optional[float], typer.Option(
        "--max-minutes", callback=_positive("--max-minutes"), help="Stop (and save) after this much wall time.",
        show_default=False)] = None,
    depth_scale: Annotated[Optional[float], typer.Option(
        "--depth-scale", callback=_positive("--depth-scale"), help="How folder depth PNGs store depth (5000: TUM).",
        show_default=False)] = None,
    quiet: Quiet = False,
    debug: Debug = False,
):
    """Train a joint upsampling network (or an ablation) on synthetic scenes and/or your folders."""

    def _recipe(name, value):
        return RECIPE[task.value].get(name, 0.0) if value is None else value

    def go() -> int:
        from .train.loop import TrainConfig
        from .train.loop import train as run_training

        _check_factor(factor)
        specs = list(data or ["synthetic"])
        _check_data(specs)
        if crop % factor or crop < 4 * factor:
            raise CliError(f"--crop {crop} must be a multiple of the factor {factor} and at least {4 * factor}",
                           EXIT_USAGE)
        dev = _resolve_device(device)
        state = output / "last_state.pt"
        if resume and not state.is_file():
            raise CliError(f"{output}: nothing to resume (no last_state.pt in it)", EXIT_USAGE)
        if not resume and (output / "model.safetensors").exists():
            raise CliError(f"{output}: already holds a trained model.safetensors; pick another -o or remove it",
                           EXIT_USAGE)
        cfg = TrainConfig(task=task.value, factor=factor, variant=variant.value if variant else None, data=specs,
                          steps=steps, batch=batch,
                          crop=crop, lr=lr, out_dir=str(output), resume=resume, device=dev, seed=seed,
                          log_every=log_every, ckpt_every=ckpt_every, threads=threads,
                          ablation=ablation.value if ablation else None, loss=loss.value, method=degradation,
                          residual=not direct, noise_std=noise_std, holes=holes, occlusion=occlusion,
                          misalign=misalign,
                          disparity=_recipe("disparity", disparity), clutter=_recipe("clutter", clutter),
                          frames=_recipe("frames", frames), two_tone=two_tone,
                          guide_aug=_recipe("guide_aug", guide_aug),
                          guide_blur=guide_blur, guide_contrast=guide_contrast,
                          texture_gain=texture_gain, ema=ema, warmup=warmup, lr_schedule=lr_schedule.value,
                          amp=amp if dev == "cuda" else None,
                          val_every=val_every, max_minutes=max_minutes, depth_scale=depth_scale, progress=not quiet,
                          synthetic_pool=synthetic_pool, zero_init_head=zero_init_head, negative_slope=negative_slope,
                          guide_pyramid=guide_pyramid, init=init.value, init_from=init_from)
        try:
            summary = run_training(cfg)
        except KeyboardInterrupt:
            _error_line(f"interrupted; checkpoint in {output} (continue with --resume)")
            return 130
        except (ValueError, OSError) as exc:
            raise CliError(_describe_exception(exc) if isinstance(exc, OSError) else str(exc), EXIT_USAGE, exc)
        if not quiet:
            rel, avg = summary.get("val_rel_rmse"), summary.get("ema_val_rel_rmse")
            _stdout().print(
                f"trained {summary['step']} steps in {summary['minutes']:.1f} min; final loss {summary['loss']:.4g}"
                + (f"; synthetic validation RMSE {rel:.3f} x bicubic" if rel is not None else "")
                + (f" (moving average: {avg:.3f})" if avg is not None else "")
                + f"\nmodel: {summary['model']}", markup=False)
        return EXIT_OK

    _run(go, debug)


EVAL_EPILOG = (
    "[bold]Examples[/bold]\n\n"
    "pacup eval --data ../shared/data/depth/motorcycle --protocol B --factor 8\n\n"
    "pacup eval --data ../shared/data/flow/flyingchairs9 --factor 4 --method bicubic --method flow-x4\n\n"
    "pacup eval --data synthetic-depth --factor 16 --method bicubic --method runs/depth-x16/model.safetensors "
    "--json eval.json\n\n"
    "[bold]What it does[/bold]: crops each ground truth to a multiple of the factor, makes the low-res input "
    "by the protocol (A: point sampling, B: Pillow bicubic, flow: antialiased bilinear), upsamples it with "
    "every method, and compares with the ground truth on valid pixels: depth RMSE / MAE (6-px border crop; "
    "also near depth edges; 0-255 units for disparity data, cm for metric data), flow EPE. Methods: "
    "bicubic, jbu (joint bilateral upsampling), guided (guided filter), nearest, a registry name, or a "
    ".safetensors file (ablations included). Default: bicubic, jbu, guided and the default model of the "
    "task and factor when it is installed.\n\n" + EXIT_CODES_HELP
)


@app.command("eval", epilog=EVAL_EPILOG)
def eval_(
    data: Annotated[str, typer.Option(
        "--data", help="A folder of RGB + ground truth, or synthetic-depth / synthetic-flow (a fixed split).",
        show_default=False)],
    factor: Annotated[int, typer.Option("--factor", "-f", help="Upsampling factor: 2, 4, 8 or 16.")] = 8,
    task: Annotated[Optional[Task], typer.Option("--task", help="depth or flow.",
                                                 show_default="from the data")] = None,
    protocol: Annotated[Optional[Protocol], typer.Option(
        "--protocol", help="A (point sampling), B (bicubic) or flow (antialiased bilinear).",
        show_default="B for depth, flow for flow")] = None,
    method: Annotated[Optional[list[str]], typer.Option(
        "--method", help="bicubic, jbu, guided, nearest, a model name or .safetensors file; repeatable.",
        show_default="bicubic, jbu, guided + the default model")] = None,
    border: Annotated[Optional[int], typer.Option("--border", min=0, help="Border crop in pixels.",
                                                  show_default="6 depth, 0 flow")] = None,
    depth_scale: Annotated[Optional[float], typer.Option(
        "--depth-scale", callback=_positive("--depth-scale"), help="How folder depth PNGs store depth.",
        show_default=False)] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Synthetic split: number of frames.")] = 16,
    size: Annotated[int, typer.Option("--size", min=16, help="Synthetic split: frame size in pixels.")] = 256,
    device: DeviceOpt = Device.auto,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads for PyTorch.",
                                                   show_default="PyTorch's default")] = None,
    ensemble: Ensemble = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write every result (per image too) as JSON.",
                                                     show_default=False)] = None,
    debug: Debug = False,
):
    """Measure depth RMSE/MAE or flow EPE of models and classical baselines on ground truth."""

    def go() -> int:
        import torch

        from .errors import PacupError
        from .models import default_model, get_entry
        from .train.evaluate import compare, default_protocol
        from .train.folders import load_dataset

        _check_factor(factor)
        _check_data([data])
        dev = _resolve_device(device)
        if threads:
            torch.set_num_threads(threads)
        if json_out is not None:
            _check_output_path(json_out, "--json", (".json",), kind="JSON")
        try:
            samples = load_dataset(data, task.value if task else None, depth_scale, n=n, size=size)
        except (ValueError, OSError) as exc:
            raise CliError(str(exc), EXIT_USAGE, exc)
        kind = samples[0].kind
        if task is not None and kind != task.value:
            raise CliError(f"{data}: holds {kind} data, not {task.value}", EXIT_USAGE)
        methods = list(method or ["bicubic", "jbu", "guided"])
        if not method and get_entry(default_model(kind, factor)).available:
            methods.append(default_model(kind, factor))
        prot = protocol.value if protocol else default_protocol(kind)
        try:
            results = compare(methods, samples, prot, factor, border, dev, None,
                              console=Console(width=max(160, _stdout().width)), ensemble=ensemble)
        except PacupError as exc:
            raise _classify(exc, data)
        except (ValueError, OSError) as exc:
            raise CliError(str(exc), EXIT_USAGE, exc)
        if json_out is not None:
            _write_json(json_out, {"data": data, "results": results})
        return EXIT_OK

    _run(go, debug)


def _version(value: bool):
    if value:
        typer.echo(f"pacup {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
):
    """Root options (the app's help text is set on the Typer object)."""


def main():
    app()
