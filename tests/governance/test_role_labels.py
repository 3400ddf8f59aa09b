"""Where a person's role is shown, a chair is called the chair of their group, not a
"Governance group member"."""

from governance.people import role_label


def test_the_header_calls_a_chair_the_chair_of_their_group(client, chair, group):
    client.force_login(chair)
    body = client.get("/").content.decode()
    assert "(Chair, Safeguarding Governance Group)" in body
    assert "Governance group member" not in body


def test_a_delegate_chair_and_a_member_are_labelled_as_such(delegate, governance_member, group):
    assert role_label(delegate) == "Delegate chair, Safeguarding Governance Group"
    assert role_label(governance_member) == "Member, Safeguarding Governance Group"


def test_other_roles_keep_their_role(quality_lead, manager):
    assert role_label(quality_lead) == "Quality lead"
    assert role_label(manager) == "Registered / service manager"


def test_a_member_of_no_group_is_a_governance_member(db):
    from tests import factories

    loner = factories.UserFactory(username="loner", role="governance_member")
    assert role_label(loner) == "Governance group member"


def test_meeting_attendees_show_their_role_in_the_group(
    client, chair, delegate, governance_member, meeting
):
    client.force_login(chair)
    body = client.get(meeting.get_absolute_url()).content.decode()
    assert f"<li>{chair} (Chair)</li>" in body
    assert f"<li>{delegate} (Delegate chair)</li>" in body
    assert f"<li>{governance_member}</li>" in body
