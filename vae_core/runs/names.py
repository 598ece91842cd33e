"""The names a class sees on its board: the display name a browser chose (checked), kept in `<runs>/.names.json`
under a one-way hash of the browser's secret, never the secret itself; without one, an anonymous animal name made
from that hash, the same on every server start.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

NAME_MAX = 24  # characters of a display name: a leaderboard cell and a gallery row label stay one line
NAME_PUNCTUATION = " -_.'"  # besides letters and digits; nothing that markdown, HTML or a link would read
NAME_RULE = f"1 to {NAME_MAX} letters, digits, spaces and - _ . '"
NAMES_FILE = ".names.json"  # under the runs folder; a dot, so it is never taken for a run
NAMES_FORMAT = "vae-lab-names/1"
MAX_NAMES_BYTES = 2**20
# Another hash than the private space's (vae_core.data.images.private): the names file names no folder.
KEY_DOMAIN = "vae-lab board name\0"
ANONYMOUS = "anonymous"
COMMAND_LINE = "the command line"  # runs trained with python -m vae_core, which have no browser
ADJECTIVES = ("amber", "bold", "brave", "bright", "brisk", "calm", "clever", "cosy", "curious", "daring", "eager",
              "fancy", "gentle", "glad", "golden", "grand", "happy", "hardy", "humble", "jolly", "keen", "kind",
              "lively", "lucky", "merry", "mighty", "misty", "modest", "nimble", "noble", "patient", "plucky",
              "polite", "proud", "quick", "quiet", "rapid", "rosy", "rusty", "shy", "silent", "silver", "sleepy",
              "smart", "snowy", "sober", "steady", "sturdy", "sunny", "swift", "tidy", "tiny", "upbeat", "vivid",
              "warm", "wary", "wild", "wise", "witty", "young", "zany", "zesty", "dapper", "fuzzy")
ANIMALS = ("otter", "badger", "beaver", "bison", "camel", "cheetah", "crane", "dolphin", "eagle", "falcon", "ferret",
           "finch", "fox", "gazelle", "gecko", "gibbon", "heron", "hedgehog", "ibis", "jackal", "jaguar", "koala",
           "lemur", "leopard", "llama", "lynx", "magpie", "marmot", "meerkat", "mole", "moose", "newt", "ocelot",
           "okapi", "orca", "osprey", "owl", "panda", "parrot", "pelican", "penguin", "puffin", "quail", "rabbit",
           "raven", "seal", "shrew", "sloth", "sparrow", "squirrel", "stork", "swan", "tapir", "tiger", "toucan",
           "turtle", "walrus", "weasel", "whale", "wombat", "wren", "yak", "zebra", "bat")

_lock = threading.Lock()  # one writer at a time in this process: two browsers saving at once both keep theirs


@dataclass(frozen=True)
class NameCheck:
    name: str | None  # the name, trimmed; None when refused
    error: str  # why it was refused and what is allowed, else ""


def check_name(text: str) -> NameCheck:
    """A display name as typed, trimmed and checked against NAME_RULE."""
    name = text.strip()
    if not name or len(name) > NAME_MAX:
        return NameCheck(None, f"A name on the board is {NAME_RULE} (this one has {len(name)} characters).")
    bad = sorted({c for c in name if not (c.isalnum() or c in NAME_PUNCTUATION)})
    if bad:
        shown = " ".join(repr(c) for c in bad[:5])
        return NameCheck(None, f"A name on the board is {NAME_RULE}: {shown} cannot be in it.")
    if name.lower().startswith(ANONYMOUS):
        return NameCheck(None, f"Names starting “{ANONYMOUS}” are the board's own for people without a name: "
                               "pick another.")
    return NameCheck(name, "")


def owner_key(secret: str) -> str:
    """The one-way hash that stands for a browser's secret wherever its name is kept (64 hex digits)."""
    return hashlib.sha256((KEY_DOMAIN + secret).encode()).hexdigest()


def anonymous_name(key: str) -> str:
    """"anonymous brisk otter": an adjective and an animal picked by the owner key (4,096 pairs)."""
    number = int(key[:8], 16)
    return f"{ANONYMOUS} {ADJECTIVES[number % len(ADJECTIVES)]} {ANIMALS[number // len(ADJECTIVES) % len(ANIMALS)]}"


def names_path(runs_dir: Path) -> Path:
    return Path(runs_dir) / NAMES_FILE


def read_names(runs_dir: Path) -> dict[str, str]:
    """Owner key -> display name; a missing or unreadable file, or a bad entry in it, counts as no name."""
    path = names_path(runs_dir)
    try:
        if path.stat().st_size > MAX_NAMES_BYTES:
            return {}
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    names = raw.get("names") if isinstance(raw, dict) and raw.get("format") == NAMES_FORMAT else None
    if not isinstance(names, dict):
        return {}
    return {k: v for k, v in names.items() if isinstance(k, str) and isinstance(v, str) and check_name(v).name == v}


def save_name(runs_dir: Path, key: str, name: str | None) -> None:
    """Set (or, with None, forget) the display name of an owner key; written atomically (a reader sees the old
    file or the new one). ValueError where the name fails check_name."""
    if name is not None and check_name(name).name != name:
        raise ValueError(check_name(name).error or f"{name!r} is not a name as check_name leaves it.")
    with _lock:
        names = read_names(runs_dir)
        if name is None:
            names.pop(key, None)
        else:
            names[key] = name
        _write(names_path(runs_dir), {"format": NAMES_FORMAT, "names": names})


def _write(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(json.dumps(content, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def display_names(owners: Iterable[str | None], names: dict[str, str]) -> dict[str | None, str]:
    """Each owner secret -> the name the board shows: its chosen name, else its animal; a name two owners share
    gets "#" and the start of each one's key, so no two owners read the same."""
    keys = {o: owner_key(o) for o in set(owners) if o is not None}
    shown = {o: names.get(k) or anonymous_name(k) for o, k in keys.items()}
    twice = {n for n, count in Counter(shown.values()).items() if count > 1}
    return {None: COMMAND_LINE, **{o: f"{n} #{keys[o][:4]}" if n in twice else n for o, n in shown.items()}}
