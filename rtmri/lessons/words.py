"""A difference of constriction in words, in English and Japanese.

A positive difference is a wider gap in the attempt than in the reference. Where the
reference closes (gap at or below one pixel, DESIGN §5b) and the attempt does not, it "did
not close"; the other way round it "closed where the reference stays open". For the velum
the curve is the opening of the velopharyngeal port: wider means lowered (air through the nose).
"""

from __future__ import annotations

from rtmri.lessons.articulators import BY_KEY
from rtmri.lessons.ipa import ipa

# key -> ((wider en, wider ja), (narrower en, narrower ja))
DIRECTION = {
    "lips": (("the lips were further apart than the reference", "唇がお手本より開いていました"),
             ("the lips were closer together than the reference", "唇がお手本より閉じていました")),
    "tongue_tip": (("the tongue tip was lower than the reference (further from the ridge behind the teeth)",
                    "舌先がお手本より低い位置にありました"),
                   ("the tongue tip was higher than the reference (closer to the ridge behind the teeth)",
                    "舌先がお手本より高い位置にありました")),
    "tongue_body": (("the tongue body was lower than the reference", "舌の中ほどがお手本より低い位置にありました"),
                    ("the tongue body was higher than the reference", "舌の中ほどがお手本より高い位置にありました")),
    "tongue_back": (("the back of the tongue was lower than the reference (further from the soft palate)",
                     "舌の奥がお手本より低い位置にありました"),
                    ("the back of the tongue was higher than the reference (closer to the soft palate)",
                     "舌の奥がお手本より高い位置にありました")),
    "velum": (("the velum was lowered (air through the nose) where the reference raises it",
               "軟口蓋が下がり、鼻に息が抜けていました"),
              ("the velum was raised (no air through the nose) where the reference lowers it",
               "軟口蓋が上がり、鼻に息が抜けていませんでした")),
    "tongue_root": (("the tongue root was further forward than the reference (the throat wider)",
                     "舌根がお手本より前にありました（のどが広い）"),
                    ("the tongue root was pulled further back than the reference (the throat narrower)",
                     "舌根がお手本より後ろに引かれていました（のどが狭い）")),
}


def describe(key: str, reference_mm: float, attempt_mm: float, closed_mm: float) -> tuple[str, str]:
    """(English, Japanese) for one articulator at one instant, without the phone and time."""
    articulator = BY_KEY[key]
    ref_closed, att_closed = reference_mm <= closed_mm, attempt_mm <= closed_mm
    if key != "velum" and ref_closed and not att_closed:
        return f"the {articulator.en} did not close", f"{articulator.ja}が閉じていませんでした"
    if key != "velum" and att_closed and not ref_closed:
        return (f"the {articulator.en} closed where the reference stays open",
                f"お手本では開いているところで{articulator.ja}が閉じていました")
    wider, narrower = DIRECTION[key]
    return wider if attempt_mm > reference_mm else narrower


def where(phone: str | None, time_s: float) -> tuple[str, str]:
    """(' for /a/ at 0.42 s', '（/a/、0.42 秒）'); phone in SAMPA, shown in IPA (M: /ɯ/)."""
    if phone:
        return f" for /{ipa(phone)}/ at {time_s:.2f} s", f"（/{ipa(phone)}/、{time_s:.2f} 秒）"
    return f" at {time_s:.2f} s", f"（{time_s:.2f} 秒）"
