"""The web wallet's words in English, Ukrainian and Russian (one dict per language, the
same keys; a test checks they match)."""

from __future__ import annotations

LANGUAGES = ("en", "uk", "ru")
NAMES = {"en": "English", "uk": "Українська", "ru": "Русский"}

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "title": "My mall wallet",
        "sign_in": "Sign in",
        "phone": "Phone number",
        "send_code": "Send me a code",
        "code_sent": "We sent a six-digit code to your phone. It works for a few minutes.",
        "code": "Code",
        "device": "Name of this device",
        "confirm": "Sign in",
        "not_registered": "No wallet yet? Register at any mall kiosk with your phone number.",
        "card": "My loyalty card",
        "card_hint": "Show this code at the till. It changes every few minutes.",
        "card_valid": "Valid until",
        "no_card": "Loyalty cards are not switched on in this mall.",
        "balances": "My points",
        "no_points": "No points yet.",
        "pocket_mall": "Mall points (every shop)",
        "expires": "expire",
        "never": "no expiry",
        "inbox": "Inbox",
        "inbox_empty": "Nothing yet.",
        "history": "History",
        "offers": "Offers",
        "no_offers": "No offers right now.",
        "for_you": "for you",
        "until": "until",
        "consent": "Privacy",
        "consent_offers": "Send me personal offers",
        "save": "Save",
        "devices": "Signed-in devices",
        "this_device": "this device",
        "sign_out": "Sign out",
        "erase": "Delete my wallet",
        "erase_warning": "This deletes your wallet, your points and everything the mall keeps "
        "about you. It cannot be undone.",
        "erase_confirm": "Yes, delete everything",
        "erased": "Your wallet and all your data have been deleted.",
        "error": "Something went wrong",
        "back": "Back",
        "live": "live",
        "err_code": "That code is wrong, expired or used. Try again or ask for a new one.",
        "err_csrf": "This page had expired. Please try again.",
        "err_phone": "That is not a valid phone number.",
        "err_limit": "Too many tries. Please wait a few minutes.",
        "err_send": "We could not send the code just now. Please try again shortly.",
    },
    "uk": {
        "title": "Мій гаманець ТРЦ",
        "sign_in": "Вхід",
        "phone": "Номер телефону",
        "send_code": "Надіслати код",
        "code_sent": "Ми надіслали шестизначний код на ваш телефон. Він діє кілька хвилин.",
        "code": "Код",
        "device": "Назва цього пристрою",
        "confirm": "Увійти",
        "not_registered": "Ще немає гаманця? Зареєструйтеся в будь-якому кіоску ТРЦ за номером "
        "телефону.",
        "card": "Моя картка лояльності",
        "card_hint": "Покажіть цей код на касі. Він змінюється кожні кілька хвилин.",
        "card_valid": "Дійсний до",
        "no_card": "Картки лояльності в цьому ТРЦ не ввімкнено.",
        "balances": "Мої бали",
        "no_points": "Балів поки немає.",
        "pocket_mall": "Бали ТРЦ (у будь-якому магазині)",
        "expires": "згорять",
        "never": "безстрокові",
        "inbox": "Повідомлення",
        "inbox_empty": "Поки нічого.",
        "history": "Історія",
        "offers": "Пропозиції",
        "no_offers": "Зараз пропозицій немає.",
        "for_you": "для вас",
        "until": "до",
        "consent": "Приватність",
        "consent_offers": "Надсилати мені персональні пропозиції",
        "save": "Зберегти",
        "devices": "Пристрої, з яких виконано вхід",
        "this_device": "цей пристрій",
        "sign_out": "Вийти",
        "erase": "Видалити мій гаманець",
        "erase_warning": "Буде видалено ваш гаманець, бали й усе, що ТРЦ зберігає про вас. "
        "Скасувати це неможливо.",
        "erase_confirm": "Так, видалити все",
        "erased": "Ваш гаманець і всі ваші дані видалено.",
        "error": "Щось пішло не так",
        "back": "Назад",
        "live": "наживо",
        "err_code": "Код неправильний, застарілий або вже використаний. Спробуйте ще раз або "
        "попросіть новий.",
        "err_csrf": "Сторінка застаріла. Спробуйте ще раз.",
        "err_phone": "Це не дійсний номер телефону.",
        "err_limit": "Забагато спроб. Зачекайте кілька хвилин.",
        "err_send": "Зараз не вдалося надіслати код. Спробуйте трохи згодом.",
    },
    "ru": {
        "title": "Мой кошелёк ТРЦ",
        "sign_in": "Вход",
        "phone": "Номер телефона",
        "send_code": "Прислать код",
        "code_sent": "Мы отправили шестизначный код на ваш телефон. Он действует несколько минут.",
        "code": "Код",
        "device": "Название этого устройства",
        "confirm": "Войти",
        "not_registered": "Ещё нет кошелька? Зарегистрируйтесь в любом киоске ТРЦ по номеру "
        "телефона.",
        "card": "Моя карта лояльности",
        "card_hint": "Покажите этот код на кассе. Он меняется каждые несколько минут.",
        "card_valid": "Действует до",
        "no_card": "Карты лояльности в этом ТРЦ не включены.",
        "balances": "Мои баллы",
        "no_points": "Баллов пока нет.",
        "pocket_mall": "Баллы ТРЦ (в любом магазине)",
        "expires": "сгорят",
        "never": "бессрочные",
        "inbox": "Сообщения",
        "inbox_empty": "Пока ничего.",
        "history": "История",
        "offers": "Предложения",
        "no_offers": "Сейчас предложений нет.",
        "for_you": "для вас",
        "until": "до",
        "consent": "Конфиденциальность",
        "consent_offers": "Присылать мне персональные предложения",
        "save": "Сохранить",
        "devices": "Устройства, с которых выполнен вход",
        "this_device": "это устройство",
        "sign_out": "Выйти",
        "erase": "Удалить мой кошелёк",
        "erase_warning": "Будут удалены ваш кошелёк, баллы и всё, что ТРЦ хранит о вас. "
        "Отменить это нельзя.",
        "erase_confirm": "Да, удалить всё",
        "erased": "Ваш кошелёк и все ваши данные удалены.",
        "error": "Что-то пошло не так",
        "back": "Назад",
        "live": "в реальном времени",
        "err_code": "Код неверный, устаревший или уже использован. Попробуйте ещё раз или "
        "запросите новый.",
        "err_csrf": "Страница устарела. Попробуйте ещё раз.",
        "err_phone": "Это недействительный номер телефона.",
        "err_limit": "Слишком много попыток. Подождите несколько минут.",
        "err_send": "Сейчас не удалось отправить код. Попробуйте чуть позже.",
    },
}


def pick_language(chosen: str | None, accept_language: str | None) -> str:
    """The chosen language if we have it, else the first of the browser's we have, else
    English."""
    if chosen in LANGUAGES:
        return str(chosen)
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"
