"""The autograder kit's engine, one subpackage per phase; dependencies point down this list.

    cli          the command line (nothing imports it)
    classroom/   a class at once: batches, records, similarity, gradebooks, class outputs
    authoring/   releases, notebooks, platform packages (Gradescope, GitHub Classroom)
    grading/     one submission: the runner, the judge (a pytest plugin), its reports
    sandbox/     where student code runs: the worker, its containment, the wire, the fork server
    config, escape   grading.yml, and student text made safe for each output (used by all)

``suites/`` holds the hidden test suites: content, not engine. ``tests/test_layout.py``
checks that no module imports one above its own phase and that no import circle exists.
"""
