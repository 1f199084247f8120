"""Questions (loaded from the authored files), learners, attempts, answers, mastery and review.

A question's correct key is stored here and only ever read by the grading service: no page
renders it before the learner has answered.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from engine.models import LiveModel
from lessons.models import LANGS, TIERS, Term


class Question(models.Model):
    term = models.ForeignKey(Term, on_delete=models.CASCADE, related_name="questions")
    key = models.CharField(max_length=40)  # the authored id, stable across languages
    position = models.PositiveSmallIntegerField(default=0)
    section = models.CharField(max_length=20, choices=[(tier, tier) for tier in TIERS])
    correct_key = models.CharField(max_length=10)
    observe = models.CharField(max_length=500, blank=True)  # "predict, then observe" sentence
    observe_model = models.CharField(  # the live model that reads it
        max_length=10, choices=LiveModel.choices, default=LiveModel.MINILM
    )

    class Meta:
        ordering = ["term", "position"]
        constraints = [models.UniqueConstraint(fields=["term", "key"], name="question_key")]

    def __str__(self):
        return f"{self.term.slug}/{self.key}"


class QuestionText(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="texts")
    lang = models.CharField(max_length=2, choices=[(code, code) for code in LANGS])
    prompt_html = models.TextField()
    # [{"key": "a", "text_html": "...", "explanation_html": "..."}] in authored order
    choices = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["question", "lang"], name="question_lang")]

    def __str__(self):
        return f"{self.question} ({self.lang})"


class Learner(models.Model):
    """Whoever is learning: an anonymous session, or a signed-in user (then ``user`` is set)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"learner {self.pk} ({self.user or 'anonymous'})"


class Attempt(models.Model):
    """One three-question check of one term."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    learner = models.ForeignKey(Learner, on_delete=models.CASCADE, related_name="attempts")
    term = models.ForeignKey(Term, on_delete=models.CASCADE, related_name="attempts")
    questions = models.ManyToManyField(Question, through="AttemptQuestion", related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    score = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"attempt {self.id} on {self.term_id}: {self.score}/3"


class Confidence(models.TextChoices):
    """How sure a learner is of an answer, chosen with it, before feedback (least sure first):
    the one list the answer form, grading, the summary and the calibration table read."""

    GUESS = "guess", _("Guessing")
    UNSURE = "unsure", _("Unsure")
    SURE = "sure", _("Sure")


class AttemptQuestion(models.Model):
    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="items")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField()
    choice_order = models.JSONField()  # the shuffled keys, so a reload shows the same order
    chosen_key = models.CharField(max_length=10, blank=True)
    correct = models.BooleanField(null=True)
    # how sure the learner said they were, chosen with the answer before any feedback
    confidence = models.CharField(max_length=10, choices=Confidence.choices, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["attempt", "position"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "question"], name="one_per_attempt"),
            models.UniqueConstraint(fields=["attempt", "position"], name="position_per_attempt"),
        ]

    def __str__(self):
        return f"{self.attempt_id} #{self.position + 1}: {self.chosen_key or '-'}"


class Mastery(models.TextChoices):
    """The levels, lowest first: the one list the templates, the graphs and the API read."""

    NOT_STARTED = "not_started", _("Not started")
    ATTEMPTED = "attempted", _("Attempted")
    FAMILIAR = "familiar", _("Familiar")
    MASTERED = "mastered", _("Mastered")


class TermProgress(models.Model):
    learner = models.ForeignKey(Learner, on_delete=models.CASCADE, related_name="progress")
    term = models.ForeignKey(Term, on_delete=models.CASCADE, related_name="+")
    mastery = models.CharField(max_length=20, choices=Mastery.choices, default=Mastery.NOT_STARTED)
    best_score = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    # ISO dates of perfect (3/3) attempts; two different days make the term mastered
    perfect_days = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["learner", "term"], name="progress_once")]

    def __str__(self):
        return f"{self.learner_id} {self.term_id}: {self.mastery}"


class ReviewCard(models.Model):
    """An fsrs card for one question a learner has answered."""

    learner = models.ForeignKey(Learner, on_delete=models.CASCADE, related_name="cards")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="cards")
    card = models.JSONField()  # fsrs.Card.to_dict()
    due = models.DateTimeField(db_index=True)
    last_reviewed_at = models.DateTimeField(null=True, blank=True)
    reviews = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["learner", "question"], name="card_once")]
        ordering = ["due"]

    def __str__(self):
        return f"card {self.question} due {self.due:%Y-%m-%d %H:%M}"


# --- classes ----------------------------------------------------------------------------------

# Join codes: no 0/O, 1/I/L or other look-alikes, so a code read aloud or off a board is typed right.
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 8


class Classroom(models.Model):
    """A class: one teacher (any signed-in user), learners who joined with its code."""

    name = models.CharField(max_length=100)
    teacher = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="classrooms_taught"
    )
    join_code = models.CharField(max_length=JOIN_CODE_LENGTH, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.name} ({self.join_code})"


class Membership(models.Model):
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="memberships")
    learner = models.ForeignKey(Learner, on_delete=models.CASCADE, related_name="memberships")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["joined_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["classroom", "learner"], name="member_once")]

    def __str__(self):
        return f"{self.learner} in {self.classroom}"


class Assignment(models.Model):
    """A term the teacher asked the class to learn: it comes first in their review and
    suggestions."""

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="assignments")
    term = models.ForeignKey(Term, on_delete=models.CASCADE, related_name="+")
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["term"]
        constraints = [models.UniqueConstraint(fields=["classroom", "term"], name="assign_once")]

    def __str__(self):
        return f"{self.term_id} for {self.classroom}"
