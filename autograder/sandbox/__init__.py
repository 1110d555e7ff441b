"""Where a student's code runs, and the only place it does.

- ``worker``: the process that imports the submission and runs the suite's probes, contained
  by ``containment`` (one module per isolation layer) before it reads a student's line;
- ``supervisor``: the judge's side of that worker: starts it, sends probe calls over the
  ``wire``, enforces time and memory, restarts it after a fault;
- ``forkserver``: a process that has imported torch once and forks warm judges and workers;
- ``submission``: a submission's files read, copied and hashed without following links.

Imports: the standard library, torch, ``kitdata``, ``autograder.config``; nothing of
grading, the class, authoring or the command line.
"""
