"""A class graded at once: one grading per student, and what an instructor reads after.

- ``batch``: tasks, executors (threads here; ``dask_executor`` on a cluster, with
  ``warm_workers``), the durable records behind ``--resume``;
- ``outputs``: grades.csv, the histograms, the summary of a batch;
- ``similarity``: pairs of submissions that look alike, and code built at run time;
- ``gradebook`` and ``nbgrader_course``: nbgrader's gradebook and course directory;
- ``late``: submission times, due dates and extensions, late penalties;
- ``lms_export``: the grades in Canvas's and Moodle's import formats;
- ``class_report``: index.html, the class on one page for a browser.

Imports: ``autograder.grading``, ``autograder.sandbox``, ``autograder.authoring``; never
the command line.
"""
