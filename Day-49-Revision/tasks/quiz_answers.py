"""Your answers to the Week 7 self-check quiz: question id -> the letter of the answer you chose.

TODO: take the quiz. `python -m lab quiz` (or `make quiz`) asks the questions of
Day-49-Revision/quiz.toml one at a time; after each answer it tells you whether it was right and
which section of the course teaches it (explaining a right answer, asking a wrong one again), and
it records your answer below. `python -m lab quiz --day 45` asks one day's questions, `--count 5
--shuffle` five at random, and `--list` shows which ones you have answered. Answering a question
again replaces your earlier answer.

You may also edit ANSWERS by hand, e.g. {"45-publisher-confirms": "b"}. The quiz rewrites this
file in order, keeping this docstring. `python -m lab grade 49` grades it, one test per question,
100 points for the whole quiz; it reads this file without running it, so keep it to this docstring
and ANSWERS as a plain dict literal.
"""

ANSWERS: dict[str, str] = {}
