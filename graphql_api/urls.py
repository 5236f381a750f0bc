from django.urls import path

from graphql_api.views import GraphQLApi

urlpatterns = [path("", GraphQLApi.as_view(), name="graphql")]
