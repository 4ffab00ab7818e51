"""The one table of each operation's quota and resend safety, held to AWS's contract."""

from __future__ import annotations

from ivschat_grpc.aws.validation import service_model
from ivschat_grpc.core.operations import OPERATIONS

from tests.support.facade import MakeFacade

# ivschat-quotas.md: AWS's per-account rates, none of which can be raised.
QUOTAS = {
    **dict.fromkeys(("CreateRoom", "GetRoom", "ListRooms", "UpdateRoom", "DeleteRoom"), 5),
    "CreateChatToken": 200,
    **dict.fromkeys(("SendEvent", "DisconnectUser", "DeleteMessage"), 100),
    **dict.fromkeys(
        (
            "CreateLoggingConfiguration",
            "GetLoggingConfiguration",
            "ListLoggingConfigurations",
            "UpdateLoggingConfiguration",
            "DeleteLoggingConfiguration",
        ),
        3,
    ),
    **dict.fromkeys(("TagResource", "UntagResource", "ListTagsForResource"), 10),
}


def test_every_operation_of_the_model_has_its_row() -> None:
    assert set(OPERATIONS) == set(service_model()["operations"])


def test_each_row_holds_aws_quota() -> None:
    assert {name: row.rate for name, row in OPERATIONS.items()} == QUOTAS


def test_only_what_takes_no_idempotency_token_is_never_resent() -> None:
    never = {name for name, row in OPERATIONS.items() if not row.resend_ambiguous}
    assert never == {"CreateRoom", "SendEvent", "CreateLoggingConfiguration"}


async def test_each_operation_gets_a_bucket_at_its_quota_or_its_setting(
    make_facade: MakeFacade,
) -> None:
    async with make_facade(operation_rates={"GetRoom": 2.0, "ListRooms": None}) as facade:
        rates = {name: pacer.rate for name, pacer in facade.service.pacers.items()}
    assert rates["GetRoom"] == 2.0
    assert rates["ListRooms"] is None  # off
    assert rates["CreateChatToken"] == 200
    assert rates["CreateRoom"] is None  # --create-rate: make_facade turns it off
    assert set(rates) == set(OPERATIONS)
