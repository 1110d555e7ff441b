"""The grading of one submission: the runner starts a judge (pytest with ``judge.plugin``)
that runs the hidden suite against a sandboxed worker, then turns what the judge reported
into a ``Result`` and its reports (results.json, junit.xml, feedback.md, report.md).

- ``runner``: one grading, end to end; ``job``: the contract between runner and judge;
- ``judge``: the pytest plugin and the checks a suite is written with (``expect_*``);
- ``notebook``: a notebook submission turned into the modules the suite imports;
- ``reports``: one grading's outputs.

Imports: ``autograder.sandbox``, ``autograder.config``, ``autograder.escape``; nothing of
the class, authoring or the command line.
"""
