from django.urls import path

from . import views

app_name = "quiz"

urlpatterns = [
    path("terms/<slug:slug>/quiz/", views.quiz, name="quiz"),
    path("terms/<slug:slug>/quiz/start/", views.start, name="start"),
    path("quiz/attempts/<str:attempt_id>/answer/", views.answer, name="answer"),
    path("progress/", views.progress, name="progress"),
    path("progress/export.json", views.export_json, name="export-json"),
    path("progress/export.csv", views.export_csv, name="export-csv"),
    path("progress/delete/", views.delete_data, name="delete-data"),
    path("review/", views.review, name="review"),
    path("review/answer/", views.review_answer, name="review-answer"),
]
