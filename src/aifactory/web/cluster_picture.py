"""The cluster as a picture: one row per node, one cell per GPU, each coloured by the project of
the job that holds it.

Pure: nodes and the active jobs' placements in (services.nodes reads them: `of_cluster`), a
`Picture` (for the table and the legend) and its SVG out. Every text is escaped here.

Privacy: a GPU held by a project the viewer may not read jobs of is "another project" — one
grey, no name, no job id, no link. services.nodes decides who may see what and sends such a
job without its id and project; `visible` narrows further (None: no narrowing; else the ids of
the projects whose names may be shown).

Colours are SVG `fill` attributes from a fixed palette (the page's Content-Security-Policy
allows presentation attributes, not `style`). A project keeps its colour from one refresh to
the next: its preferred colour is chosen by its id, and only a clash moves it to the next free.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

from aifactory.services.nodes import ClusterView
from aifactory.web.charts import Svg

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#b07aa1",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#9c755f",
    "#ff9da7",
    "#1d4e89",
)
OTHER = "#8a939c"  # another project's GPU: one grey for all of them
FREE = "#eef2f6"
ANOTHER_PROJECT = "another project"
CELL, GAP, ROW, LABEL_W, PAD = 26, 4, 34, 190, 8


@dataclass(frozen=True, slots=True)
class NodeInfo:
    id: str
    site: str
    country: str | None
    gpu_model: str | None
    gpu_ids: tuple[str, ...]
    cpus: int
    memory_mb: int
    schedulable: bool
    drain_reason: str | None = None  # None: not drained (services.nodes)
    drained_by: str | None = None  # an operator's name, or "health"
    health_problem: str | None = None  # what its latest health check found
    block: str | None = None  # its network block; None: no topology declared


@dataclass(frozen=True, slots=True)
class Holding:
    """An active job's devices: GPU ids by node. `job_id`, `project_id` and `project` are None
    for a job the viewer may not see (another project's)."""

    job_id: int | None
    project_id: int | None
    project: str | None
    gpus: Mapping[str, Sequence[str]]


@dataclass(frozen=True, slots=True)
class Cell:
    node: str
    index: int  # the GPU's position on its node (what a person counts)
    gpu: str  # the device id the executor gave it
    colour: str
    project: str | None  # None: free; ANOTHER_PROJECT when the viewer may not see whose
    job_id: int | None  # None: free, or not the viewer's to see

    @property
    def state(self) -> str:
        if self.project is None:
            return "free"
        return "other" if self.job_id is None else "busy"

    @property
    def title(self) -> str:
        where = f"{self.node}, GPU {self.index} ({self.gpu})"
        if self.project is None:
            return f"{where}: free"
        if self.job_id is None:
            return f"{where}: {self.project}"
        return f"{where}: {self.project}, job {self.job_id}"


@dataclass(frozen=True, slots=True)
class Row:
    node: NodeInfo
    cells: tuple[Cell, ...]

    @property
    def busy(self) -> int:
        return sum(1 for c in self.cells if c.project is not None)


@dataclass(frozen=True, slots=True)
class LegendEntry:
    label: str
    colour: str
    gpus: int

    @property
    def swatch(self) -> Svg:
        markup = (
            '<svg class="swatch-svg" width="12" height="12" viewBox="0 0 12 12" '
            'aria-hidden="true" focusable="false" xmlns="http://www.w3.org/2000/svg">'
            f'<rect width="12" height="12" rx="2" fill="{self.colour}" stroke="#9aa5b1"/></svg>'
        )
        return Svg(markup, self.label)


@dataclass(frozen=True, slots=True)
class Picture:
    rows: tuple[Row, ...]
    legend: tuple[LegendEntry, ...]

    @property
    def total(self) -> int:
        return sum(len(r.cells) for r in self.rows)

    @property
    def busy(self) -> int:
        return sum(r.busy for r in self.rows)

    @property
    def blocks(self) -> bool:
        """Whether any node has a network block (the table shows the column only then)."""
        return any(r.node.block for r in self.rows)


def colours(project_ids: Iterable[int]) -> dict[int, str]:
    """Each project its palette colour by id; a clash takes the next free one (while any is)."""
    chosen: dict[int, str] = {}
    taken: set[int] = set()
    for project_id in sorted(set(project_ids)):
        slot = project_id % len(PALETTE)
        for step in range(len(PALETTE)):
            if (slot + step) % len(PALETTE) not in taken:
                slot = (slot + step) % len(PALETTE)
                break
        taken.add(slot)
        if len(taken) == len(PALETTE):
            taken.clear()  # more projects than colours: start sharing again
        chosen[project_id] = PALETTE[slot]
    return chosen


def of_cluster(cluster: ClusterView) -> Picture:
    """The picture of the cluster as services.nodes showed it to the viewer."""
    nodes = [
        NodeInfo(
            n.id,
            n.site,
            n.country,
            n.gpu_model,
            n.gpu_ids,
            n.cpus,
            n.memory_mb,
            n.schedulable,
            n.drain.reason if n.drain else None,
            n.drain.by if n.drain else None,
            n.health_problem,
            n.block,
        )
        for n in cluster.nodes
    ]
    holdings = [
        Holding(job.job_id, job.project_id, job.project, {node.id: job.gpu_ids})
        for node in cluster.nodes
        for job in node.jobs
    ]
    return picture(nodes, holdings, visible=None)


def picture(
    nodes: Sequence[NodeInfo], holdings: Sequence[Holding], visible: Collection[int] | None
) -> Picture:
    """Who holds which GPU, as far as the viewer may know."""
    names = _names(holdings, visible)
    palette = colours(names)
    holder = _holders(nodes, holdings)
    rows = []
    for node in nodes:
        cells = []
        for index, gpu in enumerate(node.gpu_ids):
            held = holder.get((node.id, gpu))
            cells.append(_cell(node.id, index, gpu, held, names, palette))
        rows.append(Row(node, tuple(cells)))
    return Picture(tuple(rows), _legend(rows, palette, names))


def _names(holdings: Sequence[Holding], visible: Collection[int] | None) -> dict[int, str]:
    """The names of the projects the viewer may see, by id."""
    return {
        h.project_id: h.project
        for h in holdings
        if h.project_id is not None
        and h.project is not None
        and (visible is None or h.project_id in visible)
    }


def _holders(
    nodes: Sequence[NodeInfo], holdings: Sequence[Holding]
) -> dict[tuple[str, str], Holding]:
    known = {n.id: set(n.gpu_ids) for n in nodes}
    found: dict[tuple[str, str], Holding] = {}
    for holding in holdings:
        for node_id, gpu_ids in holding.gpus.items():
            for gpu in gpu_ids:
                if gpu in known.get(node_id, ()):
                    found[node_id, gpu] = holding
    return found


def _cell(
    node: str,
    index: int,
    gpu: str,
    held: Holding | None,
    names: Mapping[int, str],
    palette: Mapping[int, str],
) -> Cell:
    if held is None:
        return Cell(node, index, gpu, FREE, None, None)
    project = held.project_id
    if project is None or project not in names or held.job_id is None:
        return Cell(node, index, gpu, OTHER, ANOTHER_PROJECT, None)
    return Cell(node, index, gpu, palette[project], names[project], held.job_id)


def _legend(
    rows: Sequence[Row], palette: Mapping[int, str], names: Mapping[int, str]
) -> tuple[LegendEntry, ...]:
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        for cell in row.cells:
            counts[cell.project or ""] += 1
    entries = [
        LegendEntry(names[p], palette[p], counts[names[p]])
        for p in sorted(names, key=lambda p: names[p])
        if counts[names[p]]
    ]
    if counts[ANOTHER_PROJECT]:
        entries.append(LegendEntry(ANOTHER_PROJECT, OTHER, counts[ANOTHER_PROJECT]))
    entries.append(LegendEntry("free", FREE, counts[""]))
    return tuple(entries)


def svg(shown: Picture, *, title: str = "GPUs by node") -> Svg:
    """Rows of GPU cells; a cell the viewer may see the job of links to it."""
    widest = max((len(r.cells) for r in shown.rows), default=0)
    width = LABEL_W + max(widest, 4) * (CELL + GAP) + PAD
    height = max(len(shown.rows), 1) * ROW + PAD
    parts = [_hatch()]
    for i, row in enumerate(shown.rows):
        parts.append(_row(row, PAD // 2 + i * ROW))
    if not shown.rows:
        parts.append(f'<text class="cluster-empty" x="{PAD}" y="{ROW - 10}">no nodes yet</text>')
    summary = f"{title}: {shown.busy} of {shown.total} GPUs busy on {len(shown.rows)} nodes. " + (
        ", ".join(f"{e.label} {e.gpus}" for e in shown.legend) + "."
    )
    markup = (
        f'<svg class="cluster" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="group" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title><desc>{escape(summary)}</desc>{''.join(parts)}</svg>"
    )
    return Svg(markup, summary)


def _hatch() -> str:
    """Free GPUs on a node that takes no work: struck through, so they do not read as free."""
    return (
        '<defs><pattern id="cluster-drained" width="6" height="6" '
        'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<rect width="6" height="6" fill="{FREE}"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#b3261e" stroke-width="2"/></pattern></defs>'
    )


def _row(row: Row, y: int) -> str:
    node = row.node
    label = node.id if node.schedulable else f"{node.id} (drained)"
    css = "node" if node.schedulable else "node node-drained"
    parts = [
        f'<g class="{css}" data-node="{escape(node.id)}">',
        f'<text class="node-label" x="{PAD}" y="{y + CELL / 2 + 5:.0f}">{escape(label)}'
        + (f"<title>drained: {escape(node.drain_reason)}</title>" if node.drain_reason else "")
        + "</text>",
    ]
    if not row.cells:
        parts.append(
            f'<text class="node-label muted" x="{LABEL_W}" y="{y + CELL / 2 + 5:.0f}">'
            "no GPUs</text>"
        )
    for i, cell in enumerate(row.cells):
        parts.append(_cell_markup(cell, LABEL_W + i * (CELL + GAP), y, node.schedulable))
    parts.append("</g>")
    return "".join(parts)


def _cell_markup(cell: Cell, x: int, y: int, schedulable: bool) -> str:
    fill = cell.colour if cell.project is not None or schedulable else "url(#cluster-drained)"
    data = f' data-project="{escape(cell.project)}"' if cell.project else ""
    rect = (
        f'<rect class="gpu gpu-{cell.state}" x="{x}" y="{y}" width="{CELL}" height="{CELL}" '
        f'rx="3" fill="{fill}" stroke="#9aa5b1"{data}><title>{escape(cell.title)}</title></rect>'
    )
    if cell.job_id is None:
        return rect
    return f'<a href="/jobs/{cell.job_id}" aria-label="{escape(cell.title)}">{rect}</a>'
