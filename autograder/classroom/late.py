"""Late submissions: when each student handed in, and what it costs under ``grading.yml``.

    submission_time(folder) -> Submitted(when, source, notes)
    assess(cfg, assignment, student, folder, raw_score, max_score) -> the record's "late" dict

A submission's time is read from the first of these its folder holds (the row says which):

1. ``timestamp.txt`` (``nbgrader``): what nbgrader's exchange writes on ``nbgrader submit``
   and ``collect`` keeps, parsed as nbgrader parses it (``nbgrader.utils.parse_utc``: a time
   without a zone is UTC);
2. ``submission_metadata.json`` (``gradescope``): its ``created_at``;
3. the last commit of a git repository whose ``.git`` is in the folder (``git``: the committer
   date, ``git log -1 --format=%cI``). git runs on the student's repository as data: with the
   repository's dangerous settings overridden on the command line (no hooks, no signature
   programs, no pager, no fsmonitor, no transport), no system or user configuration, a time limit;
4. the newest modification time of the folder's files (``file times``), the last resort:
   unpacking an archive or copying a folder may have reset it.

Each is as trustworthy as where it comes from: nbgrader's exchange and Gradescope write theirs,
a commit's date is whatever the committer's machine said. A folder with none of them is not
marked late (``none``).

The policy (``autograder.config.LatePolicy``, the assignment's ``late`` else the course's):
a submission later than the student's due date (the assignment's ``due``, moved by their
extension) by more than ``grace_minutes`` loses ``per_day`` percent of its score for every day
or part of a day after the due date, at most 100; more than ``cutoff_days`` late, all of it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from autograder.config import Assignment, Config, LatePolicy
from autograder.sandbox.submission import read_regular

TIMESTAMP_FILE = "timestamp.txt"             # nbgrader's
GRADESCOPE_FILE = "submission_metadata.json"
SOURCES = ("nbgrader", "gradescope", "git", "file times", "none")
MAX_TIMESTAMP_BYTES = 4096
MAX_METADATA_BYTES = 4 << 20
MAX_ENTRIES = 20_000                         # files looked at for their modification times
GIT_SECONDS = 15
DAY = 86400.0


@dataclass(frozen=True)
class Submitted:
    """When a folder was handed in (aware, UTC), according to ``source``; ``notes`` say why an
    earlier source was passed over."""
    when: datetime | None
    source: str
    notes: tuple[str, ...] = field(default=())


def parse_utc(text: str) -> datetime:
    """A time as nbgrader reads ``timestamp.txt`` (``nbgrader.utils.parse_utc``): ``DATE TIME
    ZONE`` with the zone an offset (``-0700``) or a name (``UTC``, ``Europe/Paris``), else
    anything dateutil reads; a time without a zone is UTC. Returned aware, in UTC. Raises
    ValueError for text that is not a time."""
    import dateutil.parser
    import dateutil.tz

    text = text.strip()
    if not text or len(text) > 200:
        raise ValueError("not a time")
    try:
        parts = text.split(" ")
        if len(parts) == 3:
            zone: object = parts[2]
            try:
                zone = int(parts[2])
            except ValueError:
                zone = dateutil.tz.gettz(parts[2])
            when = dateutil.parser.parse(" ".join(parts[:2] + ["TZ"]), tzinfos={"TZ": zone})
        else:
            when = dateutil.parser.parse(text)
        if when.tzinfo is None or when.utcoffset() is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.astimezone(timezone.utc)
    except Exception as error:  # dateutil raises ParserError, OverflowError, TypeError... on odd text
        raise ValueError(f"not a time ({type(error).__name__})") from None


def _from_timestamp_file(folder: Path) -> tuple[datetime | None, str | None]:
    path = folder / TIMESTAMP_FILE
    if not os.path.lexists(path):
        return None, None
    data = read_regular(path, MAX_TIMESTAMP_BYTES)
    if data is None:
        return None, f"{TIMESTAMP_FILE} is not a small regular file"
    try:
        return parse_utc(data.decode("utf-8")), None
    except (UnicodeDecodeError, ValueError):
        return None, f"{TIMESTAMP_FILE} does not hold a time"


def _from_gradescope(folder: Path) -> tuple[datetime | None, str | None]:
    path = folder / GRADESCOPE_FILE
    if not os.path.lexists(path):
        return None, None
    data = read_regular(path, MAX_METADATA_BYTES)
    try:
        created = json.loads(data.decode("utf-8")).get("created_at") if data is not None else None
        if not isinstance(created, str):
            raise ValueError
        return parse_utc(created), None
    except (UnicodeDecodeError, ValueError, AttributeError, RecursionError):
        return None, f"{GRADESCOPE_FILE} has no created_at time"


# Settings of the student's repository that could run a program or reach a network during
# `git log`, overridden on the command line (which wins over the repository's own config).
_GIT_OVERRIDES = ("core.hooksPath=/dev/null", "core.fsmonitor=false", "core.pager=cat", "log.showSignature=false",
                  "gpg.program=false", "gpg.ssh.program=false", "gpg.x509.program=false", "protocol.allow=never",
                  "log.mailmap=false", "core.sshCommand=false", "uploadpack.packObjectsHook=", "safe.directory=*")


def _from_git(folder: Path) -> tuple[datetime | None, str | None]:
    dotgit = folder / ".git"
    try:
        if not stat.S_ISDIR(os.lstat(dotgit).st_mode):
            return None, None  # a .git file (a worktree's pointer elsewhere) or link is not followed
    except OSError:
        return None, None
    git = shutil.which("git")
    if git is None:
        return None, "a git repository, but git is not installed here"
    with tempfile.TemporaryDirectory(prefix="late-git-") as home:
        settings = Path(home) / "gitconfig"  # safe.directory counts only in a global config
        settings.write_text("[safe]\n\tdirectory = *\n")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LC_ALL": "C",
               "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(settings), "GIT_TERMINAL_PROMPT": "0",
               "GIT_NO_REPLACE_OBJECTS": "1", "GIT_OPTIONAL_LOCKS": "0", "GIT_NO_LAZY_FETCH": "1",
               "GIT_ALLOW_PROTOCOL": "", "GIT_PAGER": "cat", "PAGER": "cat"}
        command = [git, "--no-pager"]
        for setting in _GIT_OVERRIDES:
            command += ["-c", setting]
        # --git-dir: never the repository around the folder (the class's own, the kit's)
        command += [f"--git-dir={dotgit}", "log", "-1", "--no-show-signature", "--format=%cI", "HEAD", "--"]
        try:
            done = subprocess.run(command, cwd=home, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=GIT_SECONDS, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return None, f"git log failed ({type(error).__name__})"
    if done.returncode != 0:
        return None, "a .git folder with no commit git can read"
    try:
        return parse_utc(done.stdout[:200].decode("ascii")), None
    except (UnicodeDecodeError, ValueError):
        return None, "git gave no commit time"


def _from_file_times(folder: Path) -> tuple[datetime | None, str | None]:
    newest, seen, pending = None, 0, [folder]
    while pending and seen < MAX_ENTRIES:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    seen += 1
                    if seen > MAX_ENTRIES:
                        break
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name != ".git":
                            pending.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        mtime = entry.stat(follow_symlinks=False).st_mtime
                        newest = mtime if newest is None else max(newest, mtime)
        except OSError:
            continue
    if newest is None:
        return None, None
    return datetime.fromtimestamp(newest, timezone.utc), None


_READERS = (("nbgrader", _from_timestamp_file), ("gradescope", _from_gradescope), ("git", _from_git),
            ("file times", _from_file_times))


def submission_time(folder: Path) -> Submitted:
    """When ``folder`` was handed in, from the first source that says (see the module's text)."""
    notes = []
    for source, read in _READERS:
        try:
            when, note = read(Path(folder))
        except (OSError, ValueError, OverflowError) as error:  # one folder's oddity is a note, never the batch's end
            when, note = None, f"{source}: {type(error).__name__}"
        if note:
            notes.append(note)
        if when is not None:
            return Submitted(when, source, tuple(notes))
    return Submitted(None, "none", tuple(notes))


def deadline(cfg: Config, assignment: Assignment, student: str) -> tuple[datetime | None, bool]:
    """The student's due date (the assignment's, moved by their extension) and whether it was moved."""
    if assignment.due is None:
        return None, False
    extension = assignment.extensions.get(student, cfg.course.extensions.get(student))
    if extension is None:
        return assignment.due, False
    if isinstance(extension, datetime):
        return extension, True
    return assignment.due + timedelta(days=float(extension)), True


def policy_of(cfg: Config, assignment: Assignment) -> LatePolicy:
    return assignment.late or cfg.course.late


def days_late(late_by_seconds: float) -> int:
    """Started days after the due date: one second late is one day."""
    return 0 if late_by_seconds <= 0 else math.ceil(late_by_seconds / DAY)


def penalty_percent(policy: LatePolicy, late_by_seconds: float) -> float:
    """The percent of the score a submission ``late_by_seconds`` after its due date loses."""
    if late_by_seconds <= policy.grace_minutes * 60:
        return 0.0
    if policy.cutoff_days is not None and late_by_seconds > policy.cutoff_days * DAY:
        return 100.0
    return min(100.0, policy.per_day * days_late(late_by_seconds))


def _shown(when: datetime, like: datetime | None) -> str:
    """ISO 8601 in the due date's zone (next to it in every report), else UTC."""
    return when.astimezone(like.tzinfo if like is not None else timezone.utc).isoformat()


def assess(cfg: Config, assignment: Assignment, student: str, folder: Path, raw_score: float,
           max_score: float, submitted: Submitted | None = None) -> dict:
    """The record's ``late`` entry for one graded student: ``submitted`` (ISO 8601 or None),
    ``source``, ``due`` (theirs, extension included; None without a due date), ``extended``,
    ``late_by_seconds``, ``days_late``, ``penalty_percent``, ``raw_score``, ``score`` (after the
    penalty), ``penalty_points``, ``max_score`` and ``notes``."""
    submitted = submitted if submitted is not None else submission_time(folder)
    due, extended = deadline(cfg, assignment, student)
    late_by = 0.0
    if due is not None and submitted.when is not None:
        late_by = max(0.0, (submitted.when - due).total_seconds())
    percent = penalty_percent(policy_of(cfg, assignment), late_by) if late_by else 0.0
    score = round(raw_score * (1 - percent / 100), 6)
    return {"submitted": _shown(submitted.when, due) if submitted.when else None, "source": submitted.source,
            "due": due.isoformat(timespec="seconds") if due is not None else None, "extended": extended,
            "late_by_seconds": int(round(late_by)), "days_late": days_late(late_by), "penalty_percent": percent,
            "raw_score": raw_score, "score": score, "penalty_points": round(raw_score - score, 6),
            "max_score": max_score, "notes": list(submitted.notes)}


def describe(late: dict | None) -> str:
    """One line for a student's feedback and the table: on time, or how late and what it cost."""
    if not late or late.get("submitted") is None:
        return ""
    if not late.get("due"):
        return f"submitted {late['submitted']}"
    if not late.get("late_by_seconds"):
        return f"submitted {late['submitted']}, on time (due {late['due']})"
    hours = late["late_by_seconds"] / 3600
    text = f"submitted {late['submitted']}, {hours:.1f} h after the due date {late['due']}"
    if late.get("penalty_percent"):
        text += (f": late penalty {late['penalty_percent']:g} % ({late['raw_score']:g} -> {late['score']:g} points)")
    else:
        text += " (no penalty)"
    return text


FEEDBACK_MARK = "\n## Submission time\n"


def annotate_feedback(path: Path, late: dict | None) -> None:
    """Add (or replace) a "Submission time" section at the end of a student's feedback.md."""
    line = describe(late)
    data = read_regular(path, MAX_METADATA_BYTES)
    if data is None:
        return
    text = data.decode("utf-8", "replace").split(FEEDBACK_MARK, 1)[0].rstrip("\n") + "\n"
    if line:
        text += f"{FEEDBACK_MARK}\n{line}\n"
    try:  # a new file renamed into place: never written through a link left in the folder
        fd, temporary = tempfile.mkstemp(prefix=".feedback.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True) if "temporary" in locals() else None
