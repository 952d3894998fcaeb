"""A benchmark of known learner mistakes (issue 25): lesson words said wrongly, the way
learners of Japanese are known to say them, by synthetic voices the model never heard, next
to the same words said correctly by other such voices.

``rtmri make-mistakes OUT --seed 0`` writes it (``make.py``, VocalTractLab); ``rtmri
compare-bench OUT`` scores the learner comparison on it (``bench.py``, no synthesizer). The
layout on disk is ``layout.py``'s; what the mistakes are, and where the literature reports
them, is ``catalogue.py``'s.
"""
