"""What instructors make and ship: assignments released from solutions, notebooks built
from modules, and the packages for grading platforms.

- ``release``: ``assignments/`` from ``solutions/`` (solutions and hidden tests stripped),
  the student bundle;
- ``notebook_build``: the reference and student notebooks of an assignment's modules;
- ``export``: the Gradescope autograder zip and the GitHub Classroom workflow.

Imports: ``autograder.grading``, ``autograder.sandbox``; never the class or the command line.
"""
