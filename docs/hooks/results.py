"""MkDocs hook: one page per committed result folder, generated at build time from what
`bench report` wrote there (tables.md and figures/*.png), so the site cannot drift from the
committed results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "reports" / "results"


def _count_rows(path: Path) -> int:
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def _page(folder: Path) -> str:
    name = folder.name
    tables = folder / "tables.md"
    head = f"# `{name}`: tables and figures\n\nGenerated from `reports/results/{name}/`.\n\n"
    if tables.is_file():
        body = tables.read_text(encoding="utf-8")
        # tables.md's own headings start at "##" for each run; keep them under this title
        body = body.replace("\n# ", "\n## ")
    else:
        run = folder / "run"
        done = _count_rows(run / "results.jsonl")
        floor = _count_rows(run / "floor.jsonl")
        body = (
            f"No tables yet: the run folder `reports/results/{name}/run/` holds {done} "
            f"finished job row(s) and {floor} real-data floor row(s). `bench report "
            f"reports/results/{name}/run --out reports/results/{name}` writes them.\n"
        )
        if floor:
            rows = [json.loads(x) for x in (run / "floor.jsonl").read_text().splitlines() if x]
            keys = ("fid_inception", "kid_inception", "fid_fmnist", "kid_fmnist", "is_fmnist")
            body += "\nReal-data floor so far (training-image draws against the test split):\n\n"
            body += "| draw | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys) + "\n"
            for r in rows:
                m = r.get("metrics", {})
                cells = [f"{m[k]:.4g}" if isinstance(m.get(k), float) else "–" for k in keys]
                body += f"| {r.get('draw')} | " + " | ".join(cells) + " |\n"
    figures = sorted((folder / "figures").glob("*.png"))
    if figures:
        body += "\n## Figures\n\n" + "".join(f"![{f.stem}](figures/{f.name})\n\n" for f in figures)
    return head + body


def on_files(files: Files, config: Any) -> Files:
    """Add results/<folder>/tables.md and its figures for every committed result folder."""
    for folder in sorted(p for p in RESULTS.iterdir() if p.is_dir()):
        uri = f"results/{folder.name}/tables.md"
        files.append(File.generated(config, uri, content=_page(folder)))
        for fig in sorted((folder / "figures").glob("*.png")):
            files.append(File.generated(config, f"results/{folder.name}/figures/{fig.name}",
                                        abs_src_path=str(fig)))  # fmt: skip
    return files
