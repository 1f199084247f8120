from django.contrib import admin

from .models import AttentionRun

ARRAYS = ["weights", "scores", "qkv", "compare_weights"]  # binary; the run page shows them


@admin.register(AttentionRun)
class AttentionRunAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "text", "device", "compute_ms", "attempts", "created_at"]
    list_filter = ["status", "device"]
    search_fields = ["text", "compare_text"]
    exclude = ARRAYS
    readonly_fields = [f.name for f in AttentionRun._meta.fields if f.name not in ARRAYS]
