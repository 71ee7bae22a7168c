from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from items.models import Item


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    name = factory.Sequence(lambda n: f"Item {n}")
    description = factory.Faker("sentence")
    price = factory.Sequence(lambda n: Decimal(n % 1000) + Decimal("0.99"))
    quantity = factory.Sequence(lambda n: n % 7)
