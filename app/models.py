"""Registry: importing this module registers every domain's tables on Base.metadata."""

from app.accounts.models import ApiToken, AuthSession, User
from app.annotation.models import Judgement, Rating
from app.assignment.models import Lease
from app.audit.models import AuditEvent
from app.db import Base
from app.generation.models import GenerationConfig, GenerationRun
from app.gold.models import AnnotatorStanding, CalibrationAnswer, CalibrationAttempt, GoldAnswer, GoldScore
from app.guidelines.models import GuidelineAcknowledgement, GuidelineVersion
from app.jobs.models import Job
from app.projects.models import Candidate, Item, Project, ProjectMember, Prompt
from app.training.models import TrainingRun

__all__ = [
    "AnnotatorStanding",
    "ApiToken",
    "AuditEvent",
    "AuthSession",
    "Base",
    "CalibrationAnswer",
    "CalibrationAttempt",
    "Candidate",
    "GenerationConfig",
    "GenerationRun",
    "GoldAnswer",
    "GoldScore",
    "GuidelineAcknowledgement",
    "GuidelineVersion",
    "Item",
    "Job",
    "Judgement",
    "Lease",
    "Project",
    "ProjectMember",
    "Prompt",
    "Rating",
    "TrainingRun",
    "User",
]
