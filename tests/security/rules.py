"""Who may call each route, keyed by route name. A route missing here fails tests/security/test_access.

Adding a route: add one line `"name": Rule(LEVEL)`, with `body` when the route needs a valid body to
reach its object lookup (routes naming an item, lease, attempt, version, user or token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PUBLIC = "public"  # anyone, signed in or not
SIGNED_IN = "signed in"  # any active user
RESEARCHER = "researcher role"  # admins and researchers, no project involved
ADMIN = "admin"  # admins only (with or without a project in the path)
MEMBER = "member"  # admins, and members of the project in the path (any role)
PROJECT_ANNOTATOR = "project annotator"  # admins, and annotators who are members of the project
PROJECT_RESEARCHER = "project researcher"  # admins, and researchers who are members of the project

# Which levels each actor of tests/security/world.py passes (project A is the one in the path).
PASSES: dict[str, set[str]] = {
    "anonymous": {PUBLIC},
    "disabled": {PUBLIC},
    "other_annotator": {PUBLIC, SIGNED_IN},
    "annotator": {PUBLIC, SIGNED_IN, MEMBER, PROJECT_ANNOTATOR},
    "researcher": {PUBLIC, SIGNED_IN, RESEARCHER, MEMBER, PROJECT_RESEARCHER},
    "admin": {PUBLIC, SIGNED_IN, RESEARCHER, ADMIN, MEMBER, PROJECT_ANNOTATOR, PROJECT_RESEARCHER},
}


@dataclass(frozen=True)
class Rule:
    level: str
    body: dict[str, Any] | None = None  # form fields (HTML) or JSON (API): a valid request


PAIR_FORM = {"choice": "a", "strength": "1"}
PAIR_JSON = {"choice": "a", "strength": 1}
GOLD = {"purpose": "gold", "choice": "a", "explanation": "because"}
DRAFT = {"body": "# Rules", "summary": "changed"}
EDIT = {"side": "a", "text": "A better answer, rewritten."}

RULES: dict[str, Rule] = {
    # framework and static files
    "openapi": Rule(PUBLIC),
    "swagger_ui_html": Rule(PUBLIC),
    "swagger_ui_redirect": Rule(PUBLIC),
    "static": Rule(PUBLIC),
    # accounts
    "home": Rule(PUBLIC),
    "accounts:login_form": Rule(PUBLIC),
    "accounts:login": Rule(PUBLIC),
    "accounts:logout": Rule(PUBLIC),
    "accounts:account": Rule(SIGNED_IN),
    "accounts:create_token": Rule(RESEARCHER, {"name": "ci"}),
    "accounts:revoke_token": Rule(SIGNED_IN),
    "accounts:users": Rule(ADMIN),
    "accounts:create_user": Rule(ADMIN),
    "accounts:set_active": Rule(ADMIN, {"active": "false"}),
    "accounts:set_role": Rule(ADMIN, {"role": "researcher"}),
    "me": Rule(SIGNED_IN),
    "api_users": Rule(ADMIN),
    "api_create_user": Rule(ADMIN),
    "api_set_role": Rule(ADMIN, {"role": "researcher"}),
    "api_create_token": Rule(RESEARCHER, {"name": "ci"}),
    # projects
    "projects:list": Rule(SIGNED_IN),
    "projects:new": Rule(ADMIN),
    "projects:create": Rule(ADMIN),
    "projects:detail": Rule(MEMBER),
    "projects:edit": Rule(ADMIN),
    "projects:update": Rule(ADMIN),
    "projects:add_member": Rule(ADMIN),
    "projects:remove_member": Rule(ADMIN),
    "projects:import": Rule(ADMIN),
    "projects:api_list": Rule(SIGNED_IN),
    "projects:api_create": Rule(ADMIN),
    "projects:api_detail": Rule(MEMBER),
    "projects:api_update": Rule(ADMIN),
    "projects:api_members": Rule(MEMBER),
    "projects:api_add_member": Rule(ADMIN),
    "projects:api_remove_member": Rule(ADMIN),
    "projects:api_import": Rule(ADMIN),
    # annotation
    "annotation:workspace": Rule(PROJECT_ANNOTATOR),
    "annotation:submit": Rule(PROJECT_ANNOTATOR, PAIR_FORM),
    "annotation:skip": Rule(PROJECT_ANNOTATOR),
    "annotation:api_next": Rule(PROJECT_ANNOTATOR),
    "annotation:api_judgement": Rule(PROJECT_ANNOTATOR, PAIR_JSON),
    # guidelines
    "guidelines:index": Rule(MEMBER),
    "guidelines:panel": Rule(MEMBER),
    "guidelines:version": Rule(MEMBER),
    "guidelines:create_draft": Rule(ADMIN),
    "guidelines:edit": Rule(ADMIN),
    "guidelines:save": Rule(ADMIN, DRAFT),
    "guidelines:preview": Rule(ADMIN, DRAFT),
    "guidelines:publish": Rule(ADMIN, DRAFT),
    "guidelines:diff": Rule(MEMBER),
    "guidelines:acknowledge_form": Rule(MEMBER),
    "guidelines:acknowledge": Rule(MEMBER),
    "guidelines:api_versions": Rule(MEMBER),
    "guidelines:api_create_draft": Rule(ADMIN),
    "guidelines:api_active": Rule(MEMBER),
    "guidelines:api_pending": Rule(MEMBER),
    "guidelines:api_diff": Rule(MEMBER),
    "guidelines:api_version": Rule(MEMBER),
    "guidelines:api_update_draft": Rule(ADMIN, {"body": "# Rules"}),
    "guidelines:api_publish": Rule(ADMIN, {"summary": "changed"}),
    "guidelines:api_acknowledge": Rule(MEMBER),
    # gold and calibration
    "gold:overview": Rule(ADMIN),
    "gold:item": Rule(ADMIN),
    "gold:mark": Rule(ADMIN, GOLD),
    "gold:unmark": Rule(ADMIN),
    "gold:annotators": Rule(ADMIN),
    "gold:pause": Rule(ADMIN, {"reason": "rushing"}),
    "gold:resume": Rule(ADMIN),
    "gold:grant": Rule(ADMIN),
    "gold:attempts": Rule(ADMIN),
    "gold:calibration": Rule(PROJECT_ANNOTATOR),
    "gold:calibration_answer": Rule(PROJECT_ANNOTATOR, PAIR_FORM),
    "gold:api_list": Rule(PROJECT_RESEARCHER),
    "gold:api_mark": Rule(ADMIN, GOLD),
    "gold:api_unmark": Rule(ADMIN),
    "gold:api_standings": Rule(PROJECT_RESEARCHER),
    "gold:api_pause": Rule(ADMIN, {"reason": "rushing"}),
    "gold:api_resume": Rule(ADMIN),
    "gold:api_grant": Rule(ADMIN),
    "gold:api_attempts": Rule(ADMIN),
    "gold:api_calibration_next": Rule(PROJECT_ANNOTATOR),
    "gold:api_calibration_answer": Rule(PROJECT_ANNOTATOR, PAIR_JSON),
    # agreement, audit, export, generation
    "agreement:dashboard": Rule(ADMIN),
    "agreement:api_agreement": Rule(PROJECT_RESEARCHER),
    "agreement:api_annotators": Rule(PROJECT_RESEARCHER),
    "audit:global": Rule(ADMIN),
    "audit:project": Rule(ADMIN),
    "audit:api_events": Rule(ADMIN),
    "audit:api_project_events": Rule(ADMIN),
    "export:page": Rule(PROJECT_RESEARCHER),
    "export:download": Rule(PROJECT_RESEARCHER),
    "export:api_download": Rule(PROJECT_RESEARCHER),
    "generation:start": Rule(ADMIN),
    "generation:panel": Rule(MEMBER),
    "generation:api_start": Rule(ADMIN),
    "generation:api_list": Rule(MEMBER),
    "generation:config_create": Rule(ADMIN, {"key": "matrix", "backend": "transformers"}),
    "generation:config_delete": Rule(ADMIN),
    "generation:cancel": Rule(ADMIN),
    "generation:retry": Rule(ADMIN),
    "generation:api_configs": Rule(MEMBER),
    "generation:api_config_create": Rule(ADMIN, {"key": "matrix"}),
    "generation:api_config_delete": Rule(ADMIN),
    "generation:api_cancel": Rule(ADMIN),
    "generation:api_retry": Rule(ADMIN),
    "arena:page": Rule(PROJECT_RESEARCHER),
    "arena:api": Rule(PROJECT_RESEARCHER),
    # direct edits, export preview, reward models
    "annotation:edit": Rule(PROJECT_ANNOTATOR, EDIT),
    "annotation:api_edit": Rule(PROJECT_ANNOTATOR, EDIT),
    "export:preview": Rule(PROJECT_RESEARCHER),
    "training:page": Rule(PROJECT_RESEARCHER),
    "training:start": Rule(PROJECT_RESEARCHER),
    "training:run": Rule(PROJECT_RESEARCHER),
    "training:reliability": Rule(PROJECT_RESEARCHER),
    "training:download": Rule(PROJECT_RESEARCHER),
    "training:score": Rule(ADMIN),
    "training:queue_order": Rule(ADMIN, {"uncertain_first": "on"}),
    "training:disagreements": Rule(ADMIN),
    "training:api_disagreements": Rule(ADMIN),
    "training:api_start": Rule(PROJECT_RESEARCHER),
    "training:api_list": Rule(PROJECT_RESEARCHER),
}
