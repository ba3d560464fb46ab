"""The course's command line: ``python -m course <command>`` (or ``course <command>``).

    release [ASSIGNMENT ...]        generate the student versions into release/
    check-release                   fail if release/ differs from a fresh generation
    samples [ASSIGNMENT ...]        write the bundled sample submissions into submitted/
    grade [ASSIGNMENT ...]          autograde submitted/, write feedback/ and grades.csv
    scores                          print the score table from the gradebook
    demo                            release + samples + grade + dashboard + similarity reports: the whole pipeline
    mutations [ASSIGNMENT ...]      judge the hidden tests: correct variants pass, mistakes fail
    causes [ASSIGNMENT ...]         record how each known mistake fails, for "Likely cause" feedback
    publish DEST                    build the student repository (release/, helpers, README) in DEST
    collect ASSIGNMENT ZIP          unpack a learning platform's submissions zip into submitted/
    export-lms [ASSIGNMENT ...]     write the grades as Moodle's grade-import CSV
    similarity ASSIGNMENT           rank pairs of submissions by how alike the students' own work is
    report [ASSIGNMENT ...]         write the course dashboard into reports/ (HTML pages and per-cell CSVs)
    review [ASSIGNMENT [STUDENT DECISION]]   grades held for review; accept, set POINTS, regrade
    regrade ASSIGNMENT [--apply]    grade every recorded submission again into staging; show the diff
    receipt STUDENT ASSIGNMENT      print what a recorded grade was computed from
    verify [ASSIGNMENT ...]         grade a sample again and compare the scores with their receipts
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import GRADES_CSV, FEEDBACK, LAYOUT, ROOT, CourseError, assignments, check_assignment


def _names(given: list[str]) -> list[str]:
    return [check_assignment(n) for n in given] if given else assignments()


def cmd_release(args) -> int:
    from .commands import release

    for name in _names(args.assignments):
        path = release.generate(name)
        print(f"released {name} -> {path.relative_to(ROOT)}")
    return 0


def cmd_check_release(args) -> int:
    from .commands import release

    problems = release.check(_names(args.assignments))
    for problem in problems:
        print(problem)
    if problems:
        print("release/ is out of date: run `make release` and commit the result.")
        return 1
    print("release/ matches a fresh generation from source/")
    return 0


def cmd_samples(args) -> int:
    from .commands import samples

    for name in _names(args.assignments):
        paths = samples.build(name)
        print(f"{name}: {len(paths)} sample submission(s) in submitted/")
    return 0


def cmd_grade(args) -> int:
    from .commands import grade

    names = _names(args.assignments)
    outcomes = grade.run(names, args.student, args.force, args.workers, args.scheduler, args.unsafe)
    grade.report(names, outcomes, args.unsafe)
    return 1 if any(not o.ok for o in outcomes) and args.strict else 0


def cmd_feedback(args) -> int:
    from .commands.export import write_grades
    from .commands.feedback import write_feedback
    from .engine.plan import students

    for name in _names(args.assignments):
        who = args.student or students(name)
        done = write_feedback(name, who)
        missing = sorted(set(who) - set(done))
        print(f"{name}: feedback pages for {len(done)} student(s)"
              + (f"; not graded yet, so none for: {', '.join(missing)}" if missing else ""))
    write_grades()
    print(f"\nfeedback (HTML): {FEEDBACK.relative_to(ROOT)}/<student>/<assignment>/")
    print(f"grades (CSV):    {GRADES_CSV.relative_to(ROOT)}")
    return 0


def cmd_scores(args) -> int:
    from .commands.scores import table
    from .engine.plan import students

    names = _names(args.assignments)
    print(table(names, sorted({s for n in names for s in students(n)})))
    return 0


def cmd_demo(args) -> int:
    from .commands import grade, release, samples
    from .engine import sandbox

    names = assignments()
    unsafe = args.unsafe
    why = None if unsafe else sandbox.problem()
    if why:
        # The bundled samples are the course's own code: grading them unsandboxed risks
        # nothing. Real submissions still need the sandbox (or an explicit --unsafe).
        print(f"note: no sandbox here ({why}); the demo grades its own sample submissions without it "
              "(`course grade` still refuses real submissions unless the sandbox runs, or --unsafe is given)")
        unsafe = True
    for name in names:
        state = "up to date"
        if not release.is_current(name):
            release.generate(name)
            state = "regenerated"
        built = samples.build(name)
        print(f"{name}: release/ {state}, {len(built)} sample submission(s) in submitted/")
    outcomes = grade.run(names, None, args.force, args.workers, None, unsafe)
    grade.report(names, outcomes, unsafe)
    if any(o.ok for o in outcomes):
        from .commands import report

        print()
        print(report.summary(report.run()))
    _demo_similarity(names)
    return 0


def _demo_similarity(names: list[str]) -> None:
    """The similarity report of each assignment's samples (a second or so each; it changes no grade)."""
    from .commands import similarity

    print()
    for name in names:
        try:
            written = similarity.run(name)
        except CourseError as exc:
            print(f"{name}: no similarity report ({exc})")
            continue
        print(f"{name}: similarity report {written.html.relative_to(ROOT)} ({len(written.analysis.pairs)} pairs)")


def cmd_mutations(args) -> int:
    from . import variants
    from .commands import mutations
    from .config import settings

    names = [check_assignment(n) for n in args.assignments] or mutations.assignments_with_cases()
    problems = []
    for name in names:
        if args.variants_off and not variants.applies(name, settings().variants):
            continue  # no variants, or off already: the plain run says it all
        verdicts = mutations.run(name, only=args.case, variants_off=args.variants_off)
        print(mutations.summary(name, verdicts) + (" (variants off)" if args.variants_off else ""), flush=True)
        problems += [f"  {name}: {v.explain()}" for v in verdicts if not v.ok]
    if problems:
        print("\nCases the tests do not judge as declared:", *problems, sep="\n")
    return 1 if problems else 0


def cmd_causes(args) -> int:
    from .commands import causes

    names = [check_assignment(n) for n in args.assignments] or causes.assignments_with_diagnoses()
    for name in names:
        (grader, student), wrong = causes.record(name, keep_signatures=args.keep_signatures)
        print(f"{name}: {grader.relative_to(ROOT)} and {student.relative_to(ROOT)} written", flush=True)
        if wrong:
            print(f"  wrong verdicts of the suite (`course mutations {name}`; only declared cells that failed are recorded):",
                  *(f"    {w}" for w in wrong), sep="\n")
    return 0


def cmd_publish(args) -> int:
    from .commands import publish

    names = publish.publish(Path(args.dest))
    print(f"published {', '.join(names)} into {args.dest}")
    print("check it, then commit and push it as the student repository named in course.toml")
    return 0


def cmd_collect(args) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from .commands import collect

    try:
        tz = ZoneInfo(args.timezone) if args.timezone else None
    except (ZoneInfoNotFoundError, ValueError):
        raise CourseError(f"unknown time zone {args.timezone!r}; use a name like Europe/Berlin or UTC") from None
    report = collect.collect(check_assignment(args.assignment), Path(args.zip),
                             Path(args.roster) if args.roster else None, replace=args.replace, tz=tz)
    print(report.text())
    return 1 if report.problems else 0


def cmd_export_lms(args) -> int:
    from .commands import export

    path, notes = export.write_lms(Path(args.out), Path(args.roster) if args.roster else None,
                                   _names(args.assignments) if args.assignments else None)
    for note in notes:
        print(note)
    export.write_grades()  # the same data, for the course's own records
    print(f"grades for the learning platform: {path} (Moodle: Grades → Import → CSV file)")
    print(f"all columns (autograded, bonus, written, late): {GRADES_CSV.relative_to(ROOT)}")
    return 0


def cmd_similarity(args) -> int:
    from .commands import similarity

    if args.pairs < 0:
        raise CourseError("--pairs must be 0 or more (pairs shown side by side)")
    written = similarity.run(check_assignment(args.assignment), Path(args.reference) if args.reference else None,
                             args.pairs)
    print(similarity.summary(written))
    return 0


def cmd_report(args) -> int:
    from .commands import report

    names = [check_assignment(n) for n in args.assignments]
    print(report.summary(report.run(names or None)))
    return 0


def cmd_review(args) -> int:
    from .commands import review
    from .review import read_log, reviewer

    words = list(args.words)
    names = [check_assignment(words[0])] if words else None
    if len(words) >= 3:
        event = review.decide(words[0], words[1], words[2:], reviewer(args.by), args.reason or "", args.bonus,
                              args.unsafe)
        before, after = event.get("before") or {}, event.get("after") or {}
        print(f"{words[0]}/{words[1]}: {event['event']} recorded by {event['by']} (total "
              f"{review.number(before.get('total'))} -> {review.number(after.get('total'))}; held: "
              f"{before.get('held')} -> {after.get('held')}); feedback pages and grades.csv written again")
        return 0
    if len(words) == 2:
        raise CourseError("name a decision: accept, set POINTS --reason TEXT, or regrade")
    found = review.listing(names, everything=args.all)
    events = read_log()
    for student, assignment, standing in found:
        print(review.describe(student, assignment, standing, events) + "\n")
    held = [item for item in found if item[2].held]
    print(f"{len(held)} grade(s) held for review" + ("" if held else ": nothing to decide"))
    if held and review.interactive():
        made = review.ask(held, reviewer(args.by), unsafe=args.unsafe)
        print(f"{made} decision(s) recorded")
    return 0


def cmd_regrade(args) -> int:
    from .commands import regrade
    from .engine import pool
    from .review import reviewer

    name = check_assignment(args.assignment)
    staged = LAYOUT.staging(name)
    if not args.apply or not (staged / "results.jsonl").is_file():
        students, gone = regrade.recorded_students(name)
        print(f"{name}: grading {len(students)} recorded submission(s) again into {staged.relative_to(ROOT)}/ "
              "(the course's records are not touched) ...", flush=True)
        bar = pool.Progress(len(students), sys.stdout, sys.stderr)
        try:
            changes, outcomes, gone = regrade.stage(name, args.workers, args.unsafe, progress=bar)
        finally:
            bar.close()
        print("\n" + regrade.table(name, changes))
        for o in outcomes:
            if not o.ok:
                print(f"  not graded again: {o.student}: {o.message}")
        for student in gone:
            print(f"  not graded again: {student}: its submission is no longer in submitted/ (its grade is kept)")
        print(f"\ndiff (HTML): {(staged / 'diff.html').relative_to(ROOT)}")
        if not args.apply:
            print(f"nothing changed; to record it: python -m course regrade {name} --apply"
                  + (" --allow-lower" if any(c.kind == "lowered" for c in changes) else ""))
            return 0
    applied = regrade.apply(name, reviewer(args.by), args.allow_lower, args.reason or "")
    print(f"{name}: applied; {len(applied)} grade(s) changed ({regrade.counts(applied)}), each in the review log; "
          f"feedback pages and {GRADES_CSV.relative_to(ROOT)} written again")
    return 0


def cmd_receipt(args) -> int:
    from . import receipts
    from .review import standing

    name = check_assignment(args.assignment)
    receipt = receipts.read(LAYOUT, args.student, name)
    if receipt is None:
        raise CourseError(f"no receipt for {args.student}/{name}: not graded yet (or graded before receipts; "
                          f"grade it again with --force)")
    print(receipts.text(receipt))
    now = standing(args.student, name)
    print("review: " + ("held for review" if now.held else now.describe() or "not flagged"))
    return 0


def cmd_verify(args) -> int:
    import random

    from .commands import verify

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10 ** 6)
    rng = random.Random(seed)
    checks = []
    for name in _names(args.assignments):
        chosen = verify.choose(name, args.student, None if args.all else args.sample, rng)
        print(f"{name}: grading {len(chosen)} submission(s) again in the sandbox (sample seed {seed}) ...", flush=True)
        checks += verify.verify(name, chosen, args.workers, args.unsafe)
    print(verify.report(checks))
    return 0 if all(c.ok for c in checks) else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="course", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, func, help, assignments=True):
        s = sub.add_parser(name, help=help)
        if assignments:
            s.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="default: all")
        s.set_defaults(func=func)
        return s

    add("release", cmd_release, "generate the student versions into release/")
    add("check-release", cmd_check_release, "fail if release/ differs from a fresh generation")
    add("samples", cmd_samples, "write the bundled sample submissions into submitted/")
    g = add("grade", cmd_grade, "autograde submitted/, write feedback/ and grades.csv")
    g.add_argument("--student", action="append", help="grade only this student (repeatable)")
    g.add_argument("--force", action="store_true", help="grade again even if nothing changed")
    g.add_argument("--strict", action="store_true", help="exit 1 if any submission could not be graded")
    _pool_options(g)
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="grade on an existing Dask cluster (tcp://host:8786) instead of this machine")
    f = add("feedback", cmd_feedback, "write the feedback pages and grades.csv again from the gradebook "
                                      "(after written answers were graded in the formgrader)")
    f.add_argument("--student", action="append", help="only this student (repeatable)")
    add("scores", cmd_scores, "print the score table from the gradebook")
    m = add("mutations", cmd_mutations, "judge the hidden tests with the cases of mutations/<assignment>.toml")
    m.add_argument("--case", action="append", help="only this case id (repeatable)")
    m.add_argument("--variants-off", action="store_true",
                   help="with the assignment's per-student variants off, everyone on the default numbers: each "
                        "case judged as declared for them (fails_with_variants_off where that differs)")
    c = add("causes", cmd_causes, "run the mutation suite and record how each mistake fails (the likely causes "
                                  "feedback names), into mutations/<assignment>.causes.json and utils/causes/")
    c.add_argument("--keep-signatures", action="store_true",
                   help="no suite run: rewrite the files from the signatures recorded, with the diagnoses as they are now")
    d = add("demo", cmd_demo, "release, build the sample submissions and grade them", assignments=False)
    d.add_argument("--force", action="store_true", help="grade again even if nothing changed")
    _pool_options(d)
    pub = add("publish", cmd_publish, "build the student repository in DEST", assignments=False)
    pub.add_argument("dest", metavar="DEST", help="a new or empty folder, or a clone of the student repository")
    col = add("collect", cmd_collect, "unpack a learning platform's submissions zip into submitted/", assignments=False)
    col.add_argument("assignment", metavar="ASSIGNMENT")
    col.add_argument("zip", metavar="ZIP", help="the platform's 'download all submissions' zip")
    col.add_argument("--roster", help="CSV: student_id and any of name, lms_id, email")
    col.add_argument("--replace", action="store_true", help="replace different earlier submissions (kept in submitted/.replaced/)")
    col.add_argument("--timezone", help="time zone of the times in a Moodle zip (default: the due date's offset, else UTC)")
    lms = add("export-lms", cmd_export_lms, "write the grades as Moodle's grade-import CSV")
    lms.add_argument("--roster", help="the roster used to collect (its e-mails become the identifier)")
    lms.add_argument("--out", default="lms-grades.csv", help="where to write (default: %(default)s)")
    sim = add("similarity", cmd_similarity, "rank pairs of submissions by how alike the students' own work is "
                                            "(a report to read; it changes no grade)", assignments=False)
    sim.add_argument("assignment", metavar="ASSIGNMENT")
    sim.add_argument("--reference", metavar="DIR", help="earlier submissions to compare with, laid out as "
                                                        "submitted/ (DIR/<student>/<assignment>/*.ipynb)")
    sim.add_argument("--pairs", type=int, default=20, metavar="N",
                     help="pairs shown side by side on the page (default: %(default)s)")
    add("report", cmd_report, "write the course dashboard: reports/<assignment>.html and -cells.csv, "
                              "reports/index.html (default: every graded assignment)")
    rv = add("review", cmd_review, "list grades held for review with their evidence; decide: accept, "
                                   "set POINTS, regrade", assignments=False)
    rv.add_argument("words", nargs="*", metavar="ASSIGNMENT [STUDENT DECISION [POINTS]]",
                    help="DECISION: accept | set POINTS | regrade")
    rv.add_argument("--reason", help="why (the audit log; a set's reason is shown on the feedback page)")
    rv.add_argument("--bonus", type=float, default=0.0, help="extra credit a set gives (default 0)")
    rv.add_argument("--by", help="who decides (default: the account name)")
    rv.add_argument("--all", action="store_true", help="also list grades with a decision, and their history")
    rv.add_argument("--unsafe", action="store_true", help="regrade without the sandbox")
    rg = add("regrade", cmd_regrade, "grade every recorded submission again into staging, show what would "
                                     "change; --apply records it", assignments=False)
    rg.add_argument("assignment", metavar="ASSIGNMENT")
    rg.add_argument("--apply", action="store_true", help="record the staged grades (grades again if none are staged)")
    rg.add_argument("--allow-lower", action="store_true", help="apply even if grades are lowered")
    rg.add_argument("--reason", help="why (goes into the review log with each changed grade)")
    rg.add_argument("--by", help="who applies it (default: the account name)")
    _pool_options(rg)
    rc = add("receipt", cmd_receipt, "print what a recorded grade was computed from", assignments=False)
    rc.add_argument("student", metavar="STUDENT")
    rc.add_argument("assignment", metavar="ASSIGNMENT")
    v = add("verify", cmd_verify, "grade recorded submissions again; fail if a score differs from its receipt")
    v.add_argument("--sample", type=_workers, default=5, metavar="N", help="how many per assignment (default 5)")
    v.add_argument("--all", action="store_true", help="every recorded submission")
    v.add_argument("--student", action="append", help="this student (repeatable)")
    v.add_argument("--seed", type=int, help="seed of the random sample (printed, to repeat it)")
    _pool_options(v)
    return p


def _workers(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("--workers must be 1 or more")
    return value


def _pool_options(sub) -> None:
    sub.add_argument("--workers", type=_workers, metavar="N",
                     help="submissions graded at once (default: course.toml [grading] workers, else all cores)")
    sub.add_argument("--unsafe", action="store_true",
                     help="grade without the bubblewrap sandbox (student code runs with your rights)")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
