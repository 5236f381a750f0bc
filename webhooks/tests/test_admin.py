"""Staff get a read-only delivery log in admin: nothing to add, change or delete, no secrets."""

import pytest
from django.urls import reverse

from webhooks.models import Attempt, Delivery, Endpoint, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("agent@example.com", "agent@example.com", "x" * 12)
    client.force_login(user)
    return client


def test_staff_browse_the_delivery_log_read_only(staff_client, admin_member, endpoint, organization, publish):
    publish(organization)
    delivery = Delivery.objects.get()
    secret_sealed = Endpoint.objects.get().secret_sealed
    for model in (Endpoint, Message, Delivery, Attempt):
        changelist = reverse(f"admin:webhooks_{model._meta.model_name}_changelist")
        response = staff_client.get(changelist)
        assert response.status_code == 200, model
        assert reverse(f"admin:webhooks_{model._meta.model_name}_add") not in response.content.decode()
    page = staff_client.get(reverse("admin:webhooks_delivery_change", args=[delivery.pk])).content.decode()
    assert delivery.message.msg_id in page and "Save" not in page.replace("Save as", "")
    endpoint_page = staff_client.get(reverse("admin:webhooks_endpoint_change", args=[endpoint.pk])).content.decode()
    assert secret_sealed not in endpoint_page and "secret_sealed" not in endpoint_page
    assert staff_client.post(reverse("admin:webhooks_delivery_delete", args=[delivery.pk]), {"post": "yes"}).status_code == 403
    assert Delivery.objects.exists()
