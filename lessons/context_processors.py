from django.conf import settings
from django.urls import translate_url
from django.utils.translation import get_language


def site(request):
    """The language switch: the same page in the other language, query string kept."""
    current = get_language() or settings.LANGUAGE_CODE
    full_path = request.get_full_path()
    switch = [
        {
            "code": code,
            "name": name,
            "url": translate_url(full_path, code),
            "current": code == current,
        }
        for code, name in (("ja", "日本語"), ("en", "English"))
    ]
    return {"language_switch": switch, "LANG": current}
