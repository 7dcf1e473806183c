from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.accounts.models import Role


class LoginForm(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    next: str = ""


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64, examples=["alice"])
    password: str = Field(min_length=8, max_length=1024, examples=["correct horse battery"])
    role: Role = Field(examples=["annotator"])
    display_name: str = Field(default="", max_length=120, examples=["Alice"])


class UserActive(BaseModel):
    active: bool


class UserRole(BaseModel):
    role: Role = Field(examples=["researcher"])


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120, examples=["export script"])


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role
    is_active: bool


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class NewTokenOut(TokenOut):
    token: str = Field(description="the secret; shown once, never stored")
