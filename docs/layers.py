"""Draw the import graph of callcenter/, ivr/ and acd/ as floors of a house: docs/layers.svg.

    python docs/layers.py            # writes docs/layers.svg, prints the rooms and their arrows
    python docs/layers.py --check    # also exits 1 when an arrow points up or rooms form a cycle

A room is a package of callcenter/ (sip, media, calls...), one of its top-level modules
(app.py, cli.py...), or one of the libraries ivr/ and acd/. Every import counts, including
those under ``if TYPE_CHECKING`` and inside functions, because each is a dependency a reader
has to hold in mind. A room's floor is the length of the longest chain of rooms below it, so
the ground floor imports no other room and every arrow of a sound plan points down. Arrows
that point sideways or up (a cycle) are drawn red and listed.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[1]
LIBRARIES = ("callcenter", "ivr", "acd")


@dataclass
class Room:
    name: str
    modules: list[str] = field(default_factory=list)
    lines: int = 0
    floor: int = 0


def room_of(module: str) -> str | None:
    """`callcenter.sip.message` -> `sip`, `callcenter.app` -> `app`, `ivr.engine` -> `ivr`."""
    parts = module.split(".")
    if parts[0] not in LIBRARIES:
        return None
    if parts[0] != "callcenter":
        return parts[0]
    if len(parts) == 1:
        return "callcenter"
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str) -> set[str]:
    """Every module `path` imports, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def survey() -> tuple[dict[str, Room], dict[tuple[str, str], int]]:
    """The rooms and the number of import statements from one room into another."""
    rooms: dict[str, Room] = {}
    arrows: dict[tuple[str, str], int] = defaultdict(int)
    for library in LIBRARIES:
        for path in sorted((REPO / library).rglob("*.py")):
            module = module_name(path)
            if module == "callcenter":
                continue  # the package's own __init__: a namespace, not a room
            here = room_of(module)
            assert here is not None
            room = rooms.setdefault(here, Room(here))
            room.modules.append(module)
            room.lines += len(path.read_text(encoding="utf-8").splitlines())
            targets = {room_of(m) for m in imports_of(path, module)}
            for there in targets - {None, here, "callcenter"}:  # the package itself is a namespace
                arrows[(here, str(there))] += 1
    return rooms, dict(arrows)


def assign_floors(rooms: dict[str, Room], arrows: dict[tuple[str, str], int]) -> list[str]:
    """Set each room's floor; return the arrows that close a cycle (as 'a -> b')."""
    below: dict[str, set[str]] = defaultdict(set)
    for src, dst in arrows:
        below[src].add(dst)
    state: dict[str, int] = {}  # 1 = on the path being walked, 2 = done
    cyclic: list[str] = []

    def visit(name: str) -> int:
        state[name] = 1
        floor = 0
        for other in sorted(below[name]):
            if state.get(other) == 1:
                cyclic.append(f"{name} -> {other}")
                continue
            floor = max(floor, (visit(other) if other not in state else rooms[other].floor) + 1)
        rooms[name].floor = floor
        state[name] = 2
        return floor

    for name in sorted(rooms):
        if name not in state:
            visit(name)
    return cyclic


def bad_arrows(rooms: dict[str, Room], arrows: dict[tuple[str, str], int]) -> list[str]:
    return sorted(
        f"{a} -> {b}" for a, b in arrows if rooms[b].floor >= rooms[a].floor
    )


BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 46, 28, 70, 30


def render(rooms: dict[str, Room], arrows: dict[tuple[str, str], int]) -> str:
    floors: dict[int, list[Room]] = defaultdict(list)
    for room in sorted(rooms.values(), key=lambda r: r.name):
        floors[room.floor].append(room)
    top = max(floors)
    widest = max(len(f) for f in floors.values())
    width = 2 * MARGIN + 90 + widest * (BOX_W + GAP_X)
    height = 2 * MARGIN + (top + 1) * (BOX_H + GAP_Y)
    where: dict[str, tuple[float, float]] = {}
    for floor, row in floors.items():
        y = MARGIN + (top - floor) * (BOX_H + GAP_Y)
        span = len(row) * (BOX_W + GAP_X) - GAP_X
        x0 = MARGIN + 90 + ((widest * (BOX_W + GAP_X) - GAP_X) - span) / 2
        for i, room in enumerate(row):
            where[room.name] = (x0 + i * (BOX_W + GAP_X), y)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        'font-family="sans-serif" font-size="12">',
        '<defs><marker id="down" markerWidth="8" markerHeight="8" refX="7" refY="4" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#667"/></marker>'
        '<marker id="up" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" fill="#c00"/></marker></defs>',
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    for floor in floors:
        y = MARGIN + (top - floor) * (BOX_H + GAP_Y) + BOX_H / 2 + 4
        out.append(f'<text x="{MARGIN}" y="{y:.0f}" fill="#889">floor {floor}</text>')
    for (src, dst), count in sorted(arrows.items()):
        (x1, y1), (x2, y2) = where[src], where[dst]
        up = rooms[dst].floor >= rooms[src].floor
        start = (x1 + BOX_W / 2, y1 + (0 if up else BOX_H))
        end = (x2 + BOX_W / 2, y2 + (BOX_H if up else 0))
        colour, marker = ("#c00", "up") if up else ("#99a", "down")
        out.append(
            f'<line x1="{start[0]:.0f}" y1="{start[1]:.0f}" x2="{end[0]:.0f}" '
            f'y2="{end[1]:.0f}" stroke="{colour}" stroke-width="{min(1 + count / 4, 4):.1f}" '
            f'marker-end="url(#{marker})"><title>{escape(src)} imports {escape(dst)} '
            f"({count} files)</title></line>"
        )
    for name, (x, y) in where.items():
        room = rooms[name]
        fill = "#eef4ff" if name in ("ivr", "acd") else "#f6f6f0"
        out.append(
            f'<g><title>{escape(", ".join(room.modules))}</title>'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="6" '
            f'fill="{fill}" stroke="#445"/>'
            f'<text x="{x + BOX_W / 2:.0f}" y="{y + 19:.0f}" text-anchor="middle" '
            f'font-weight="bold">{escape(name)}</text>'
            f'<text x="{x + BOX_W / 2:.0f}" y="{y + 36:.0f}" text-anchor="middle" '
            f'fill="#556">{len(room.modules)} modules, {room.lines} lines</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 on an arrow that is not down")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "layers.svg")
    args = parser.parse_args(argv)
    rooms, arrows = survey()
    cyclic = assign_floors(rooms, arrows)
    wrong = sorted(set(bad_arrows(rooms, arrows)) | set(cyclic))
    args.out.write_text(render(rooms, arrows), encoding="utf-8")
    for room in sorted(rooms.values(), key=lambda r: (-r.floor, r.name)):
        down = sorted(b for a, b in arrows if a == room.name)
        print(f"floor {room.floor}  {room.name:<12} -> {', '.join(down) or '(nothing)'}")
    for arrow in wrong:
        print(f"not pointing down: {arrow}")
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 1 if args.check and wrong else 0


if __name__ == "__main__":
    sys.exit(main())
