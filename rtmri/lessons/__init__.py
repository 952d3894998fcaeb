"""Lessons: native reference utterances with their words, and the comparison of a learner's
attempt with one of them.

A lesson is a folder::

    <lesson>/lesson.json   name, Japanese text, kana, romaji, English gloss, phones with times
    <lesson>/audio.flac    the native utterance (any audio file: wav, flac, mp3, ogg)
    <lesson>/video.mp4     optional: its rtMRI video (any video; 25 fps by timestamp when read)

A lesson set (``--references DIR``) is a folder of lesson folders. Loose recordings in it
(``<name>.wav`` with an optional ``<name>.mp4`` and ``<name>.json`` beside it) are lessons too;
one without its JSON is named after its file and carries a note saying what is missing.
"""
