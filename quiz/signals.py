from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver


@receiver(user_logged_in)
def merge_session_progress(sender, request, user, **kwargs):
    """Logging in keeps what the learner did before, anonymously, in this browser."""
    from .services import merge_session_learner

    merge_session_learner(request=request, user=user)
