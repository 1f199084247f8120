"""``{% faithfulness_panel run as panel %}``: what ``engine/_faithfulness.html`` shows for a run
(its check, the plot, the table), so the run page includes the panel with one line."""

from django import template
from django.utils.translation import gettext as _

from engine import checks
from engine.faithfulness_svg import deletion_plot_svg

register = template.Library()


def method_names() -> dict[str, str]:
    return {
        "attention": _("Last-layer attention"),
        "rollout": _("Attention rollout"),
        "norm": _("Norm-based attention"),
        "gradient": _("Gradient × input"),
    }


def _removed(result: dict, positions: list[int]) -> str:
    tokens = result["tokens"]
    return ", ".join(tokens[p] for p in positions)


@register.simple_tag
def faithfulness_panel(run, check=None) -> dict:
    check = check or checks.check_of(run)
    panel = {"check": check, "decoder": run.is_decoder}
    if check is None or check.status != check.Status.DONE or not check.result:
        return panel
    result = check.result
    names = method_names()
    if run.is_decoder:
        y_label = _("Change of the next-token prediction")
        description = _(
            "How far the GPT's next-token distribution at the last position moves (total variation distance, 0 to 1) when the tokens each method ranks highest are removed, against removing random tokens."
        )
    else:
        y_label = _("Shift of the sentence embedding")
        description = _(
            "How far the sentence embedding moves (1 − cosine with the original) when the tokens each method ranks highest are removed, against removing random tokens."
        )
    panel["svg"] = deletion_plot_svg(
        result,
        names=names,
        title=_("Deletion test: removing the top-k tokens of each method"),
        description=description,
        x_label=_("Tokens removed (k)"),
        y_label=y_label,
        random_label=_("Random (mean ± sd)"),
    )
    panel["y_label"] = y_label
    panel["ks"] = result["k"]
    panel["rows"] = [
        {
            "name": names.get(name, name),
            "method": name,
            "shift": data["shift"],
            "removed": _removed(result, data["removed"]),
            "band": _band(data["shift"], result["random"]),
        }
        for name, data in ((n, result["methods"][n]) for n in names if n in result["methods"])
    ]
    panel["random"] = list(zip(result["random"]["mean"], result["random"]["sd"], strict=True))
    panel["draws"] = result["random"]["draws"]
    panel["compute_ms"] = result["compute_ms"]
    panel["passes"] = result["forward_passes"]
    return panel


def _band(shift: list[float], random: dict) -> str:
    """Where a method's curve lies against the random band (the mean of the random removals
    ± one sd), over every k: above it at every point, at some, inside it, or below it."""
    points = list(zip(shift, random["mean"], random["sd"], strict=True))
    above = [value > mean + sd for value, mean, sd in points]
    below = [value < mean - sd for value, mean, sd in points]
    if all(above):
        return _("above the random band at every k")
    if any(above):
        return _("above the random band at %(n)d of %(k)d points") % {
            "n": sum(above),
            "k": len(above),
        }
    if all(below):
        return _("below the random band: it picks tokens that matter less than chance")
    return _("inside the random band: no better than chance here")
