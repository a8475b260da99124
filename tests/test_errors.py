"""One error tree: every exception class defined in our packages hangs under OutreachError."""

import importlib
import inspect
import pkgutil

import channels
import flows
import outreach
from channels import sendgrid_webhooks, twilio_webhooks
from channels.errors import OutreachError, SignatureRejected, WebhookError, WebhookPayloadError

# an HTTP answer raised inside the web stack, not an error of ours (starlette turns it into a 413)
NOT_OURS = {"outreach.web.limits.BodyTooLarge"}


def _our_exception_classes() -> dict[str, type]:
    found = {}
    for package in (channels, outreach, flows):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if ".migrations" in info.name:
                continue
            module = importlib.import_module(info.name)
            for name, obj in inspect.getmembers(module, inspect.isclass):
                if obj.__module__ == info.name and issubclass(obj, BaseException):
                    found[f"{info.name}.{name}"] = obj
    return found


def test_every_exception_class_is_under_the_one_root():
    classes = _our_exception_classes()
    assert len(classes) > 15  # the walk found the tree, not an empty list
    strays = sorted(name for name, cls in classes.items() if not issubclass(cls, OutreachError))
    assert [s for s in strays if s not in NOT_OURS] == []


def test_webhook_errors_are_defined_once_inside_the_tree():
    assert twilio_webhooks.WebhookPayloadError is sendgrid_webhooks.WebhookPayloadError is WebhookPayloadError
    assert sendgrid_webhooks.SignatureRejected is SignatureRejected
    assert issubclass(SignatureRejected, WebhookError) and issubclass(WebhookPayloadError, ValueError)
    assert SignatureRejected.__bases__ != (Exception,)
