from django.contrib import admin

from .models import AttentionRun

ARRAYS = AttentionRun.ARRAY_FIELDS  # binary; the run page shows them


@admin.register(AttentionRun)
class AttentionRunAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "text", "device", "compute_ms", "attempts", "created_at"]
    list_filter = ["status", "device"]
    search_fields = ["text", "compare_text"]
    exclude = list(ARRAYS)
    readonly_fields = [f.name for f in AttentionRun._meta.fields if f.name not in ARRAYS]
