from .models import Mastery


def mastery_levels(request):
    """The mastery levels in order with their labels, for the legend and the labels in every
    template (one source: ``quiz.models.Mastery``)."""
    return {"MASTERY_LEVELS": Mastery.choices}
