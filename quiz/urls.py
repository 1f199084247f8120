from django.urls import path

from . import views

app_name = "quiz"

urlpatterns = [
    path("terms/<slug:slug>/quiz/", views.quiz, name="quiz"),
    path("terms/<slug:slug>/quiz/start/", views.start, name="start"),
    path("quiz/attempts/<str:attempt_id>/answer/", views.answer, name="answer"),
    path("progress/", views.progress, name="progress"),
    path("review/", views.review, name="review"),
    path("review/answer/", views.review_answer, name="review-answer"),
]
