"""Channel subscriptions and personal profiles in the store."""

from __future__ import annotations

from datetime import timedelta

from digestbot.store import SqlStore
from digestbot.store.slack import (
    PersonalProfile,
    delete_subscriptions,
    load_channel_profiles,
    load_channel_subscriptions,
    load_personal_profile,
    load_personal_profiles,
    record_subscription,
    upsert_personal_profile,
)
from tests.conftest import NOW


def test_subscriptions_are_unique_per_channel_and_profile(store: SqlStore) -> None:
    assert record_subscription(store, channel_id="C1", profile="a", user_id="U1", now=NOW)
    assert not record_subscription(store, channel_id="C1", profile="a", user_id="U2", now=NOW)
    later = NOW + timedelta(minutes=1)
    assert record_subscription(store, channel_id="C2", profile="a", user_id="U1", now=later)
    assert record_subscription(store, channel_id="C1", profile="b", user_id="U1", now=later)
    assert load_channel_subscriptions(store, "a") == ["C1", "C2"]
    assert load_channel_profiles(store, "C1") == ["a", "b"]
    assert delete_subscriptions(store, channel_id="C1", profile="a") == 1
    assert delete_subscriptions(store, channel_id="C1", profile="a") == 0
    assert load_channel_subscriptions(store, "a") == ["C2"]
    assert delete_subscriptions(store, channel_id="C1") == 1
    assert load_channel_profiles(store, "C1") == []


def test_personal_profiles_round_trip_and_rank_as_profiles(store: SqlStore) -> None:
    assert load_personal_profile(store, "U1") == PersonalProfile(user_id="U1")
    upsert_personal_profile(store, PersonalProfile(user_id="U1", terms=("mamba",)), now=NOW)
    upsert_personal_profile(
        store,
        PersonalProfile(
            user_id="U1",
            terms=("mamba", "état de l'art"),
            delivery_time="07:30",
            timezone="Europe/Paris",
        ),
        now=NOW,
    )
    upsert_personal_profile(store, PersonalProfile(user_id="U0"), now=NOW)
    mine = load_personal_profile(store, "U1")
    assert mine == PersonalProfile(
        user_id="U1",
        terms=("mamba", "état de l'art"),
        delivery_time="07:30",
        timezone="Europe/Paris",
    )
    assert load_personal_profiles(store) == [mine]  # U0 follows nothing
    profile = mine.as_profile()
    assert profile is not None
    assert (profile.name, profile.keywords) == ("user-u1", {"mamba": 1.0, "état de l'art": 1.0})
    assert PersonalProfile(user_id="U0").as_profile() is None
