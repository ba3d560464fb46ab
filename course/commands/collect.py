"""Collect submissions from a learning platform's "download all submissions" zip.

``python -m course collect ASSIGNMENT ZIP [--roster roster.csv]`` writes
``submitted/<student>/<assignment>/<notebook>.ipynb`` and ``timestamp.txt`` for each
student, the layout that grading reads. Layouts understood:

* Moodle, in folders: ``Full Name_12345_assignsubmission_file_/autodiff.ipynb``;
* Moodle, flat (older versions): ``Full Name_12345_assignsubmission_file_autodiff.ipynb``;
* nbgrader's zip_collect example (Blackboard style):
  ``<anything>_<student>_attempt_2026-11-20-23-59-00_autodiff.ipynb``.

Platform names become student ids through the roster, a CSV file with a ``student_id``
column and any of ``name`` (the full name the platform shows), ``lms_id`` (Moodle's
participant number, the 12345 above, or the platform's user name) and ``email``. Without
a roster, the platform's name becomes the id (lower case, ``_`` for spaces).

Submission times: Moodle stores each file's upload time as the file's time in the zip
(local time of the Moodle server: ``--timezone``, default the due date's offset, else UTC);
nbgrader's layout carries it in the name. It is written to ``timestamp.txt`` in nbgrader's
format, so nbgrader's due dates (course.toml ``[due]``) and late penalty apply.

Nothing is lost or overwritten silently: a renamed notebook (``Copy of autodiff.ipynb``,
``autodiff (1).ipynb``) is accepted when it is the only notebook and written under the
expected name (the zip is only read); a student who appears twice, or hands in several
notebooks none of which has the expected name, is reported and skipped; a folder in
submitted/ that holds a different submission is left alone unless ``--replace`` is given,
and then it is moved to ``submitted/.replaced/`` first.

Threat: the zip comes from students' uploads. It is never extracted: entries are read into
memory one by one, each at most MAX_FILE bytes. A zip with an entry that is a symbolic link
or whose path is absolute or climbs out with ``..`` is refused as a whole.
"""

from __future__ import annotations

import csv
import re
import shutil
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path, PurePosixPath

import nbformat

from ..config import SOURCE, SUBMITTED, CourseError, check_assignment, settings

MAX_FILE = 100 * 2**20  # bytes; a notebook with many figures is a few MB
TIMESTAMP = "timestamp.txt"
REPLACED = ".replaced"
MOODLE = re.compile(r"^(?P<name>.+?)_(?P<lms_id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<rest>.*)$")
NBGRADER = re.compile(r"^.*_(?P<student>[^_/]+)_attempt_(?P<ts>\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)_(?P<file>.+)$")
JUNK = ("__MACOSX", ".DS_Store", ".ipynb_checkpoints", "Thumbs.db")


@dataclass
class Upload:
    """One notebook file of the zip, with who handed it in and when."""

    entry: str  # path inside the zip
    name: str  # the platform's name for the student (full name, or user name)
    lms_id: str | None
    filename: str
    data: bytes
    time: datetime | None


@dataclass
class Report:
    collected: list[str] = field(default_factory=list)  # "student: note"
    late: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # need a person's attention

    def text(self) -> str:
        lines = [f"collected {len(self.collected)} submission(s)"] + [f"  {c}" for c in self.collected]
        if self.late:
            lines += ["late:"] + [f"  {c}" for c in self.late]
        if self.problems:
            lines += ["needs attention (not collected, or collected with a warning):"]
            lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")


def _key(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


@dataclass
class Roster:
    by_key: dict[str, str]  # lms id, name or email (normalised) -> student id
    rows: list[dict[str, str]]

    def lookup(self, name: str, lms_id: str | None) -> str | None:
        for key in (lms_id, name):
            if key and _key(key) in self.by_key:
                return self.by_key[_key(key)]
        return None


def read_roster(path: Path) -> Roster:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise CourseError(f"roster {path} not found") from None
    if not rows or "student_id" not in rows[0]:
        raise CourseError(f"{path}: the roster needs a header with a student_id column and any of "
                          "name, lms_id, email (one row per student)")
    by_key: dict[str, str] = {}
    for number, row in enumerate(rows, start=2):
        student = (row.get("student_id") or "").strip()
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", student):
            raise CourseError(f"{path}, line {number}: student_id {student!r} must be letters, digits, '_', '.' or '-'")
        for column in ("lms_id", "name", "email"):
            value = (row.get(column) or "").strip()
            if not value:
                continue
            if by_key.get(_key(value), student) != student:
                raise CourseError(f"{path}: {column} {value!r} belongs to both {by_key[_key(value)]} and {student}")
            by_key[_key(value)] = student
    return Roster(by_key, rows)


def _check_entry(info: zipfile.ZipInfo) -> None:
    path = PurePosixPath(info.filename.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", info.filename):
        raise CourseError(f"refusing the zip: the entry {info.filename!r} points outside the archive")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise CourseError(f"refusing the zip: the entry {info.filename!r} is a symbolic link")


def read_zip(path: Path, tz: tzinfo) -> tuple[list[Upload], list[str]]:
    """The notebooks of the zip and what was skipped in it (with why)."""
    uploads, skipped = [], []
    try:
        archive = zipfile.ZipFile(path)
    except (FileNotFoundError, zipfile.BadZipFile) as exc:
        raise CourseError(f"{path} is not a readable zip file ({exc}); download the submissions again") from None
    with archive:
        infos = archive.infolist()
        for info in infos:
            _check_entry(info)
        for info in infos:
            parts = PurePosixPath(info.filename).parts
            if info.is_dir() or any(p in JUNK or p.startswith("._") for p in parts):
                continue
            moodle, nbg = MOODLE.match(parts[0]), NBGRADER.match(parts[-1])
            if moodle and moodle["plugin"] != "file":
                continue  # online text and comments: nothing to grade
            if moodle:
                name, lms_id = moodle["name"], moodle["lms_id"]
                filename = parts[-1] if len(parts) > 1 else moodle["rest"]
                when = datetime(*info.date_time, tzinfo=tz)
            elif nbg:
                name, lms_id, filename = nbg["student"], None, nbg["file"]
                when = datetime.strptime(nbg["ts"], "%Y-%m-%d-%H-%M-%S").replace(tzinfo=tz)
            else:
                skipped.append(f"{info.filename}: not in a layout this command knows (Moodle's or nbgrader's)")
                continue
            if not filename.endswith(".ipynb"):
                skipped.append(f"{info.filename}: not a notebook, ignored")
                continue
            if info.file_size > MAX_FILE:
                skipped.append(f"{info.filename}: {info.file_size} bytes, over the limit of {MAX_FILE}; not collected")
                continue
            with archive.open(info) as handle:
                data = handle.read(MAX_FILE + 1)
            uploads.append(Upload(info.filename, name, lms_id, filename, data[:MAX_FILE], when))
    return uploads, skipped


def _choose(uploads: list[Upload], expected: set[str]) -> tuple[list[tuple[Upload, str]], str]:
    """The files to write (with the name to write them under) and a note; empty list: refuse."""
    names = sorted(u.filename for u in uploads)
    if len(names) != len(set(names)):
        return [], f"the same file twice ({', '.join(names)}): hand-picked resolution needed"
    exact = [(u, u.filename) for u in uploads if u.filename in expected]
    if exact:
        extra = sorted(set(names) - expected)
        return exact, f"ignored the other notebook(s) {', '.join(extra)}" if extra else ""
    if len(uploads) == 1 and len(expected) == 1:
        (want,) = expected
        return [(uploads[0], want)], f"renamed {uploads[0].filename!r} to {want}"
    return [], (f"{len(uploads)} notebooks ({', '.join(names)}), none named {', '.join(sorted(expected))}: "
                "rename the right one by hand")


def _readable(data: bytes) -> str | None:
    try:
        nbformat.validate(nbformat.reads(data.decode("utf-8"), as_version=4))
    except Exception as exc:  # JSON, Unicode and format errors
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    return None


def _late(when: datetime | None, due: datetime | None) -> timedelta | None:
    if when is None or due is None or when <= due:
        return None
    return when - due


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    return (f"{days} d " if days else "") + f"{rest // 60} h {rest % 60} min"


def _same(folder: Path, files: dict[str, bytes]) -> bool:
    present = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    return present == files


def collect(assignment: str, zip_path: Path, roster_path: Path | None = None, replace: bool = False,
            tz: tzinfo | None = None, dest: Path = SUBMITTED) -> Report:
    check_assignment(assignment)
    due = settings().due.get(assignment)
    tz = tz or (due.tzinfo if due else timezone.utc)
    expected = {p.name for p in (SOURCE / assignment).glob("*.ipynb")}
    roster = read_roster(roster_path) if roster_path else None
    uploads, skipped = read_zip(Path(zip_path), tz)
    report = Report(problems=list(skipped))
    if not uploads:
        report.problems.append(f"{zip_path} holds no notebook in a layout this command knows")
        return report

    by_student: dict[str, list[Upload]] = {}
    for upload in uploads:
        student = roster.lookup(upload.name, upload.lms_id) if roster else slug(upload.name)
        if not student:
            report.problems.append(f"{upload.entry}: {upload.name!r} is not in the roster: add them, then collect again")
            continue
        by_student.setdefault(student, []).append(upload)

    for student, theirs in sorted(by_student.items()):
        sources = sorted({u.entry.split("/")[0] if "/" in u.entry else u.entry for u in theirs})
        if len({(u.name, u.lms_id) for u in theirs}) > 1:
            report.problems.append(f"{student}: submitted under several platform names ({', '.join(sources)}); "
                                   "not collected: decide which one counts and collect it alone")
            continue
        chosen, note = _choose(theirs, expected)
        if not chosen:
            report.problems.append(f"{student}: {note}; not collected")
            continue
        files = {name: upload.data for upload, name in chosen}
        times = [u.time for u, _ in chosen if u.time]
        when = max(times) if times else None
        if when:
            files[TIMESTAMP] = when.isoformat(" ").encode()
        folder = dest / student / assignment
        if folder.is_dir() and any(folder.iterdir()):
            if _same(folder, files):
                report.collected.append(f"{student}: already collected, unchanged")
                continue
            if not replace:
                report.problems.append(f"{student}: submitted/{student}/{assignment} already holds a different "
                                       "submission; left as it is (collect with --replace to replace it; "
                                       f"the old one is then kept in submitted/{REPLACED}/)")
                continue
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
            backup = dest / REPLACED / student / f"{assignment}-{stamp}"
            backup.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(folder), str(backup))
            note = "; ".join(n for n in (note, f"replaced the earlier submission (kept in {backup.relative_to(dest.parent)})") if n)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        for upload, name in chosen:
            problem = _readable(upload.data)
            if problem:
                report.problems.append(f"{student}: {upload.filename} is not a readable notebook ({problem}); "
                                       "collected anyway, grading will report it")
        late = _late(when, due)
        if late:
            report.late.append(f"{student}: {_duration(late)} late (handed in {when.isoformat(' ')})")
        report.collected.append(f"{student}" + (f": {note}" if note else ""))
    return report
