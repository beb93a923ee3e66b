"""Variants from outside the package: installed entry points and ``--plugin`` files or modules.

A plugin is Python code that registers variants (and, if it needs them, losses) with the same
decorators the built-in variants use, :func:`models.registry.register_variant` and
:func:`models.losses.register_loss`. Two ways in:

* an installed package that declares an entry point in the group ``fmgan_bench.variants``
  (``mygan = mypkg.gan`` in setup.cfg's ``[options.entry_points]``, or pyproject's
  ``[project.entry-points."fmgan_bench.variants"]``): loaded when :mod:`models` is imported,
  so every process of a run (pool workers, Slurm tasks) sees the same variants;
* ``--plugin PATH.py`` or ``--plugin package.module`` on a command, loaded by
  :func:`load_plugin`; a run records it in its plan so that worker processes load it too.

Every variant a plugin registers is stamped with the plugin's origin (package and version, or
file, and the sha256 of its source), which config.json and every result row record and which
resume and scoring compare, so a run never continues or scores with changed plugin code.
Each variant must pass :func:`models.registry.check_contract` on a test batch; a plugin that
fails to import, clashes with a registered name or breaks the contract registers nothing and
gives one message naming it. A broken entry point is reported by :func:`plugin_errors` (the
command line prints it as a warning) and the other variants still work.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata as md
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.registry import check_contract, get_variant, registering_as

ENTRY_POINT_GROUP = "fmgan_bench.variants"


class PluginError(ValueError):
    """A plugin that cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class Plugin:
    """One loaded plugin: how it was named, where its code is, what it registered."""

    spec: str  # the entry point's name, or the --plugin argument as resolved
    origin: dict[str, Any]
    variants: tuple[str, ...]


_LOADED: dict[str, Plugin] = {}  # by resolved spec (absolute path or module name)
_ERRORS: list[str] = []


def _digest(files: list[Path], root: Path) -> str:
    """sha256 over the relative names and bytes of ``files`` (sorted)."""
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def file_origin(path: Path) -> dict[str, Any]:
    """Origin of a plugin file: its absolute path and the sha256 of its bytes."""
    return {"file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def module_origin(module: str, dist: md.Distribution | None = None) -> dict[str, Any]:
    """Origin of a plugin module: the module, its distribution's name and version (when it
    is installed as one), and the sha256 over every ``.py`` file of its top-level package,
    so an editable install whose code changed is told apart from the one a run used."""
    top = module.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"No module named {top!r}")
    if spec.submodule_search_locations:  # a package: hash all its sources
        root = Path(next(iter(spec.submodule_search_locations)))
        files = [p for p in root.rglob("*.py") if "__pycache__" not in p.parts]
        sha, base = _digest(files, root.parent), root.parent
    else:
        path = Path(spec.origin)
        sha, base = _digest([path], path.parent), path.parent
    out: dict[str, Any] = {"module": module}
    if dist is None:
        names = md.packages_distributions().get(top, [])
        dist = md.distribution(names[0]) if names else None
    if dist is not None:
        out.update(package=dist.metadata["Name"], version=dist.version)
    out.update(path=str(base), sha256=sha)
    return out


def describe(origin: dict[str, Any] | None) -> str:
    """One short human phrase for an origin: 'fmgan-bench' for the built-in variants."""
    if not origin:
        return "fmgan-bench"
    where = (
        f"{origin['package']} {origin['version']}" if "package" in origin
        else origin.get("module") or Path(origin.get("file", "?")).name
    )  # fmt: skip
    return f"{where} sha256 {origin['sha256'][:12]}"


def same_code(saved: dict[str, Any] | None, current: dict[str, Any] | None) -> bool:
    """Whether a run's recorded origin and the variant's current one are the same code: both
    built in, or both plugins with equal source digests (a moved file is the same code)."""
    if not saved or not current:
        return not saved and not current
    return saved.get("sha256") == current.get("sha256")


def _checked(label: str, origin: dict[str, Any], run: Any) -> tuple[str, ...]:
    """Run ``run()`` (which imports the plugin's code) with registrations stamped with
    ``origin``, then check every variant it registered; nothing stays registered on error."""
    try:
        with registering_as(origin) as added:
            run()
            names = added()
            for name in names:
                check_contract(get_variant(name))
    except SystemExit as exc:  # sys.exit() in foreign code must not end the command with 0
        raise PluginError(f"plugin {label}: called sys.exit({exc.code!r}) while loading; a "
                          "plugin registers variants and returns") from None  # fmt: skip
    except Exception as exc:  # any failure of foreign code: one message naming the plugin
        raise PluginError(f"plugin {label}: {type(exc).__name__}: {exc}") from exc
    if not names:
        raise PluginError(f"plugin {label}: registered no variant (decorate a factory with "
                          "models.registry.register_variant)")  # fmt: skip
    return tuple(names)


def _is_file(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or Path(spec).is_file()


def canonical(spec: str) -> str:
    """A ``--plugin`` argument as every process of a run can load it: a file by its absolute
    path, a module by its name."""
    return str(Path(spec).resolve()) if _is_file(spec) else spec


def load_plugin(spec: str) -> Plugin:
    """Load the plugin named by ``spec``, a ``.py`` file or an importable module, once.

    Raises:
        PluginError: a missing file or module, an import error, a name that clashes with a
            registered variant or loss, a factory that does not return a valid Variant, or a
            variant that breaks the contract on a test batch.
    """
    is_file = _is_file(spec)
    key = canonical(spec)
    if key in _LOADED:
        return _LOADED[key]
    if is_file:
        path = Path(key)
        if not path.is_file():
            raise PluginError(f"plugin {spec}: no such file")
        origin = {"plugin": path.stem, **file_origin(path)}
        modname = f"fmgan_bench_plugin_{path.stem.replace('-', '_')}_{origin['sha256'][:8]}"

        def run() -> None:
            loader_spec = importlib.util.spec_from_file_location(modname, path)
            assert loader_spec is not None and loader_spec.loader is not None
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[modname] = module  # dataclasses and pickling look modules up here
            try:
                loader_spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(modname, None)
                raise

    else:
        try:
            origin = {"plugin": spec, **module_origin(spec)}
        except (ImportError, ValueError) as exc:
            raise PluginError(f"plugin {spec}: cannot import it ({exc})") from None

        def run() -> None:
            importlib.import_module(spec)

    names = _checked(spec, origin, run)
    plugin = Plugin(key, origin, names)
    _LOADED[key] = plugin
    return plugin


def ensure_plugins(specs: tuple[str, ...] | list[str]) -> None:
    """Load every plugin of ``specs`` not loaded yet (a worker process resolving a plan)."""
    for spec in specs:
        load_plugin(spec)


def load_entry_points() -> None:
    """Load every installed plugin of the group ``fmgan_bench.variants``; record a message
    for each one that fails (:func:`plugin_errors`) and go on with the rest."""
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        key = f"entry point {ep.name}"
        if key in _LOADED:
            continue
        dist = ep.dist
        label = f"{ep.name!r} ({ep.value}" + (f", {dist.metadata['Name']} {dist.version})"
                                             if dist is not None else ")")  # fmt: skip
        try:
            origin = {"plugin": ep.name, "entry_point": ep.value, **module_origin(ep.module, dist)}
        except (ImportError, ValueError) as exc:
            _ERRORS.append(f"plugin {label}: cannot import it ({exc})")
            continue

        def run(ep: md.EntryPoint = ep) -> None:
            obj = ep.load()
            if ep.attr and callable(obj):  # mypkg.gan:register names a function to call
                obj()

        try:
            names = _checked(label, origin, run)
        except PluginError as exc:
            _ERRORS.append(str(exc))
            continue
        _LOADED[key] = Plugin(key, origin, names)


def plugin_errors() -> list[str]:
    """One message per installed plugin that could not be loaded."""
    return list(_ERRORS)


def loaded_plugins() -> list[Plugin]:
    """The plugins loaded in this process, entry points first."""
    return list(_LOADED.values())
