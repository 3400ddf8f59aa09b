"""Share-link pages (``qip_portal/packs/sharing.py``).

Signed in: a plan's share links, for quality leads and administrators who may read the
plan (everyone else gets the same 404 as for a plan that does not exist): create a
link, see each link's state, its pack's progress and every access, withdraw it.

Not signed in: the recipient's page, the PDF and the evidence ZIP, found by token
alone. An unknown token is a 404; an expired or withdrawn one gets a plain page that
says so and names nothing of the plan. Every request with a known token is logged, and
every request to these pages counts against its address's allowance.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import security, stuck
from core.storage import download_response
from core.thresholds import SHARE_LINK_DEFAULT_DAYS, SHARE_LINK_MAX_DAYS
from plans.access import get_plan_for_user
from plans.models import Plan, User
from qip_portal.packs import evidence_pack, sharing
from qip_portal.packs.models import PackShare, PackShareAccess

# The new link's token, kept in the session only until the page after creation shows it.
_NEW_LINK_SESSION_KEY = "new-share-link"


def get_plan_to_share(user: User, reference: str) -> Plan:
    """The plan, if ``user`` may share it: a quality lead or administrator who reads
    it. Otherwise 404."""
    plan = get_plan_for_user(user, reference)
    if not sharing.can_share(user):
        raise Http404("No such page.")
    return plan


def get_share_to_revoke(user: User, pk: int) -> PackShare:
    share = PackShare.objects.select_related("plan").filter(pk=pk).first()
    if share is None or not sharing.can_share(user):
        raise Http404("No such link.")
    get_plan_for_user(user, share.plan.reference)
    return share


class ShareForm(forms.Form):
    recipient = forms.CharField(
        label="Recipient's name",
        max_length=120,
        help_text="The person the link is for. Their name is printed on every page of the PDF.",
    )
    organisation = forms.CharField(
        label="Organisation (optional)",
        max_length=120,
        required=False,
        help_text="For example, CQC or the commissioning body.",
    )
    days = forms.IntegerField(
        label="Days the link lasts",
        min_value=1,
        max_value=SHARE_LINK_MAX_DAYS,
        initial=SHARE_LINK_DEFAULT_DAYS,
        help_text=f"{SHARE_LINK_DEFAULT_DAYS} unless you choose otherwise; at most "
        f"{SHARE_LINK_MAX_DAYS}.",
    )


@require_http_methods(["GET", "POST"])
def plan_shares(request: HttpRequest, reference: str) -> HttpResponse:
    """A plan's share links (GET); create one (POST)."""
    plan = get_plan_to_share(request.user, reference)
    form = ShareForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                new = sharing.share_plan_pack(plan=plan, by=request.user, **form.cleaned_data)
            except sharing.ShareRefused as refused:
                form.add_error(None, refused.message)
            except stuck.TooMuchWaiting as refused:
                form.add_error(None, refused.message)
            else:
                request.session[_NEW_LINK_SESSION_KEY] = {"pk": new.share.pk, "token": new.token}
                messages.success(request, f"Share link created for {new.share.recipient_label}.")
                url = reverse("packs:shares", args=[plan.reference])
                return redirect(f"{url}#share-{new.share.pk}")
        status = 400
    new_link = request.session.pop(_NEW_LINK_SESSION_KEY, None)
    shares = sharing.shares_for_plan(plan)
    if new_link:
        new_link["url"] = request.build_absolute_uri(
            reverse("shared:page", args=[new_link["token"]])
        )
    response = render(
        request,
        "evidence_pack/shares.html",
        {
            "plan": plan,
            "form": form,
            "shares": shares,
            "new_link": new_link,
            "now": timezone.now(),
            "section": "plans",
            "can_retry": True,
        },
        status=status,
    )
    return response


@require_POST
def share_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    share = get_share_to_revoke(request.user, pk)
    if sharing.revoke_share(share=share, by=request.user):
        messages.success(request, f"The link for {share.recipient_label} no longer works.")
    else:
        messages.info(request, "That link had already been withdrawn.")
    return redirect(f"{reverse('packs:shares', args=[share.plan.reference])}#share-{share.pk}")


# --- The recipient's side (no login) ------------------------------------------------------


def _plain(request: HttpRequest, template: str, context: dict, status: int) -> HttpResponse:
    response = render(request, template, context, status=status)
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _open(
    request: HttpRequest, token: str, what: str
) -> tuple[PackShare | None, HttpResponse | None]:
    """The share a token opens, or the response to give instead: too many requests,
    not found, or the plain page of an expired or withdrawn link (logged)."""
    if sharing.is_throttled(request):
        response = _plain(request, "share/throttled.html", {}, 429)
        response["Retry-After"] = "60"
        return None, response
    share = sharing.find_share(token)
    if share is None:
        raise Http404("No such link.")
    refused = sharing.refusal(share)
    if refused:
        sharing.record_access(share, request, what=what, outcome=refused)
        return None, _plain(
            request,
            "share/unavailable.html",
            {"revoked": refused == PackShareAccess.Outcome.REVOKED},
            410,
        )
    return share, None


@login_not_required
@never_cache
@require_GET
def shared_page(request: HttpRequest, token: str) -> HttpResponse:
    share, refused = _open(request, token, PackShareAccess.What.PAGE)
    if refused:
        return refused
    sharing.record_access(
        share, request, what=PackShareAccess.What.PAGE, outcome=PackShareAccess.Outcome.SERVED
    )
    files = evidence_pack.plan_files(share.plan)
    return _plain(
        request,
        "share/page.html",
        {"share": share, "pack": share.pack, "files": files, "token": token},
        200,
    )


@login_not_required
@never_cache
@require_GET
def shared_pdf(request: HttpRequest, token: str) -> HttpResponse:
    share, refused = _open(request, token, PackShareAccess.What.PDF)
    if refused:
        return refused
    pack = share.pack
    if not pack.is_ready:
        sharing.record_access(
            share,
            request,
            what=PackShareAccess.What.PDF,
            outcome=PackShareAccess.Outcome.NOT_READY,
        )
        return redirect("shared:page", token=token)
    sharing.record_access(
        share, request, what=PackShareAccess.What.PDF, outcome=PackShareAccess.Outcome.SERVED
    )
    response = download_response(
        pack.pdf, filename=pack.download_name(), content_type="application/pdf"
    )
    response["Referrer-Policy"] = "no-referrer"
    return response


@login_not_required
@never_cache
@require_GET
def shared_zip(request: HttpRequest, token: str) -> HttpResponse:
    share, refused = _open(request, token, PackShareAccess.What.ZIP)
    if refused:
        return refused
    sharing.record_access(
        share, request, what=PackShareAccess.What.ZIP, outcome=PackShareAccess.Outcome.SERVED
    )
    files = evidence_pack.plan_files(share.plan)
    security.record(
        "export",
        request=request,
        detail=f"Evidence files ZIP {share.plan.reference} by share link {share.pk}: "
        f"{len(files)} file(s)",
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(
        evidence_pack.stream_zip(share.plan, files), content_type="application/zip"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="evidence-files-{share.plan.reference}-{stamp}.zip"'
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response
