"""grade-batch on Dask, on a LocalCluster(processes=True, n_workers=2) of the test's own.

The class is small on purpose (CI time): the reference, the skeleton, a crash, a hang and a
memory hog, under small limits so that the hang costs seconds. Dask must give the grades
``--jobs 1`` gives, and a Dask worker killed in the middle of a grading must cost no grade
(killed twice on the same student: a grader error for that student alone).
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.authoring import release
from tests.example_course import EXAMPLE, GOOD, children, cmdline, replace_function, still_running_after

distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

from autograder.classroom.batch import Task  # noqa: E402
from autograder.classroom.dask_executor import SCHEDULER_CONFIG, DaskExecutor  # noqa: E402

CLASS = {
    "alice": GOOD,
    "bob": None,                                                       # the released skeleton
    "carol": replace_function("double", "import os\nos._exit(7)"),     # the worker dies
    "dave": replace_function("double", "while True:\n    pass"),       # hangs
    "erin": replace_function("double", """
        hoard = []
        for _ in range(80):  # 8 GB, 100 MB at a time
            hoard.append(torch.ones(100 * 2**20, dtype=torch.uint8))
        return 2 * x
    """),
}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The example course with small limits (a hang costs 5 s a probe: the memory hog must reach
    its 1500 MB within a probe's time even on a machine busy with other tests), and the class."""
    tmp = tmp_path_factory.mktemp("dask")
    course = tmp / "course"
    shutil.copytree(EXAMPLE, course)
    yml = course / "grading.yml"
    yml.write_text(yml.read_text().replace("probe_seconds: 8", "probe_seconds: 5"))
    skeleton = release.render_assignment(course / "solutions" / "01_mini")["mini.py"].decode()
    root = tmp / "class"
    for name, source in CLASS.items():
        (root / name).mkdir(parents=True)
        (root / name / "mini.py").write_text(skeleton if source is None else source)
    return {"config": yml, "root": root, "tmp": tmp}


@pytest.fixture(scope="module")
def cluster():
    with dask.config.set(SCHEDULER_CONFIG):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None, silence_logs=40) as local:
            with distributed.Client(local) as client:
                yield local, client


def grade_batch(course, out: Path, *how: str) -> list[str]:
    return [sys.executable, "-m", "autograder.cli", "--config", str(course["config"]), "grade-batch",
            str(course["root"]), "--assignment", "mini", "--out", str(out), *how]


def grades(out: Path) -> dict[str, dict]:
    """grades.csv less the reason (it may name a path), by student."""
    return {r["student"]: {k: v for k, v in r.items() if k != "reason"}
            for r in csv.DictReader((out / "grades.csv").open())}


def reasons(out: Path) -> dict[str, str]:
    """Each student's reason, to show beside a mismatch of grades."""
    return {r["student"]: r["reason"] for r in csv.DictReader((out / "grades.csv").open())}


def test_dask_gives_the_grades_of_jobs_1(course, cluster):
    """Warm on Dask (each Dask worker thread forks from a fork server of its own) against cold
    here: the same grades for a reference, a skeleton, a crash, a hang and a memory hog."""
    local, _ = cluster
    here = subprocess.run(grade_batch(course, course["tmp"] / "jobs1", "--jobs", "1", "--cold"),
                          capture_output=True, text=True, timeout=900)
    assert here.returncode == 0, here.stderr
    there = subprocess.run(grade_batch(course, course["tmp"] / "dask", "--scheduler", local.scheduler_address),
                           capture_output=True, text=True, timeout=900)
    assert there.returncode == 0, there.stderr
    expected = grades(course["tmp"] / "jobs1")
    assert grades(course["tmp"] / "dask") == expected, (reasons(course["tmp"] / "jobs1"), reasons(course["tmp"] / "dask"))
    # and the class is the mixed one it is meant to be (else the comparison proves little)
    assert expected["alice"]["score"] == "100" and expected["bob"]["score"] == "0"
    assert {s: expected[s]["status"] for s in ("dave", "erin")} == {"dave": "timeout", "erin": "memory"}
    assert expected["carol"]["test_double"] == "0" and expected["carol"]["status"] == "graded"
    assert (course["tmp"] / "dask" / "students" / "alice" / "results.json").is_file()  # the reports, written by the workers


def _kill_workers_running(client, plan: dict[str, int], cli: subprocess.Popen) -> dict[str, int]:
    """While the CLI runs, SIGKILL the Dask worker process grading each student in ``plan``,
    up to that many times (each time on whichever worker has the task then)."""
    kills = {student: 0 for student in plan}
    seen: set[tuple[str, str]] = set()
    while cli.poll() is None:
        try:
            processing = client.processing()
            pids = client.run(os.getpid)
        except Exception:  # a worker going away under us: ask again
            time.sleep(0.2)
            continue
        for address, keys in processing.items():
            for key in keys:
                student = str(key).split("-", 2)[2]  # grade-NUMBER-STUDENT
                if student in plan and kills[student] < plan[student] and (student, address) not in seen \
                        and address in pids and len(keys) == 1:
                    os.kill(pids[address], signal.SIGKILL)
                    seen.add((student, address))
                    kills[student] += 1
        time.sleep(0.1)
    return kills


def test_a_killed_dask_worker_loses_no_grade(course, cluster, tmp_path):
    local, client = cluster
    root = tmp_path / "class"
    for name in ("alice", "bob", "carol"):
        (root / name).mkdir(parents=True)
        (root / name / "mini.py").write_text(GOOD if name != "bob" else GOOD.replace("return 2 * x", "return 3 * x"))
    run = {**course, "root": root}
    out = tmp_path / "out"
    # --cold: gradings of seconds, so that each kill lands in the middle of one (warm ones take
    # under a second; the warm path on Dask is test_dask_gives_the_grades_of_jobs_1)
    cli = subprocess.Popen(grade_batch(run, out, "--scheduler", local.scheduler_address, "--cold"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # alice's worker dies once: retried on another worker. carol's dies twice: a grader error for her alone.
    kills = _kill_workers_running(client, {"alice": 1, "carol": 2}, cli)
    stdout, stderr = cli.communicate(timeout=600)
    assert kills == {"alice": 1, "carol": 2}, stderr
    rows = grades(out)
    assert rows["alice"]["score"] == "100" and rows["alice"]["status"] == "graded"
    assert rows["bob"]["score"] == "60" and rows["bob"]["status"] == "graded"
    assert rows["carol"]["status"] == "grader-error"
    assert cli.returncode == 3  # a grader error: the instructor must look
    reason = next(r for r in csv.DictReader((out / "grades.csv").open()) if r["student"] == "carol")["reason"]
    assert "KilledWorker" in reason


def _fork_servers_under(pid: int) -> list[int]:
    """The zygotes (autograder.sandbox.forkserver) whose parent is the process ``pid``."""
    return [child for child in children().get(pid, []) if "autograder.sandbox.forkserver" in cmdline(str(child))]


def _servers_held(client) -> dict[str, list[int]]:
    """The zygotes each Dask worker holds (started ahead, or its threads' own), by worker."""
    def held():
        from autograder.sandbox import forkserver
        return sorted(server.process.pid for server in forkserver._servers if server.alive)
    return client.run(held)


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_a_local_cluster_starts_its_fork_servers_with_its_workers(course, tmp_path, warm):
    """--scheduler local:N: warm, the executor starts one fork server per worker before the
    workers exist and hands each worker one as it joins (forkserver.HandOver, WarmWorkers);
    the gradings use those. Cold, none is started. Closing the cluster leaves no zygote behind."""
    executor = DaskExecutor("local:2", warm=warm)
    try:
        workers = executor.client.run(os.getpid)
        assert len(workers) == 2
        held = _servers_held(executor.client)
        zygotes = sum(held.values(), [])
        if warm:  # one each, two of this process's children: none started by a worker
            assert all(len(pids) == 1 for pids in held.values()) and len(set(zygotes)) == 2, held
            assert set(zygotes) <= set(_fork_servers_under(os.getpid()))
        else:
            assert zygotes == []
        assert all(_fork_servers_under(pid) == [] for pid in workers.values())
        tasks = [Task(str(course["config"]), "mini", name, str(course["root"] / name), str(tmp_path / "out"),
                      only=("test_double",), warm=warm) for name in ("alice", "bob")]
        scores = {task.student: outcome["result"]["tests"][0]["score"] for task, outcome in executor.run(tasks)}
        assert scores == {"alice": 40, "bob": 0}
        if warm:  # graded from the zygotes handed over: no other was started
            assert _servers_held(executor.client) == held
            assert all(_fork_servers_under(pid) == [] for pid in workers.values())
    finally:
        executor.close()
    # each zygote ends with its worker's end of its socket, a moment after the worker does
    assert still_running_after(zygotes, 15) == []
